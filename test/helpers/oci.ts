import { createHash } from 'node:crypto';
import { MediaType } from '../../src/domain/media-types.ts';

/** Small deterministic pieces for talking OCI to a registry in tests. */

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Deterministic pseudo-random bytes: a sha256 chain seeded by `seed`. */
export function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset, 0, Math.min(block.length, size - offset));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Node's Buffer as fetch's body type (the DOM typings want an ArrayBuffer-backed view). */
export function body(bytes: Buffer): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

export interface Blob {
  bytes: Buffer;
  digest: string;
  size: number;
}

export function blob(seed: string, size = 1024): Blob {
  const bytes = bytesOf(seed, size);
  return { bytes, digest: sha256(bytes), size };
}

/** Monolithic upload: POST ?digest= with the whole body. */
export async function pushBlob(base: string, repo: string, b: Blob): Promise<Response> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: body(b.bytes),
  });
  if (res.status !== 201) throw new Error(`push blob: ${res.status} ${await res.text()}`);
  return res;
}

export interface Manifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export function imageManifest(
  config: Blob,
  layers: Blob[],
  extra: Record<string, unknown> = {},
  mediaType: string = MediaType.OciManifest,
): Manifest {
  const docker = mediaType === MediaType.DockerManifest;
  const body = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
      digest: config.digest,
      size: config.size,
    },
    layers: layers.map((l) => ({
      mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(body, null, 3));
  return { bytes, digest: sha256(bytes), mediaType };
}

export function indexManifest(
  children: { manifest: Manifest; platform: { os: string; architecture: string } }[],
  mediaType: string = MediaType.OciIndex,
): Manifest {
  const body = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({
      mediaType: c.manifest.mediaType,
      digest: c.manifest.digest,
      size: c.manifest.bytes.length,
      platform: c.platform,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(body));
  return { bytes, digest: sha256(bytes), mediaType };
}

export async function putManifest(base: string, repo: string, reference: string, m: Manifest): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': m.mediaType },
    body: body(m.bytes),
  });
}

/** Pushes config, layers and the manifest; returns the manifest. */
export async function pushImage(base: string, repo: string, tag: string, seed: string, layerSizes = [2048, 4096]): Promise<Manifest & { config: Blob; layers: Blob[] }> {
  const config = blob(`${seed}/config`, 256);
  const layers = layerSizes.map((size, i) => blob(`${seed}/layer${i}`, size));
  for (const b of [config, ...layers]) await pushBlob(base, repo, b);
  const manifest = imageManifest(config, layers);
  const res = await putManifest(base, repo, tag, manifest);
  if (res.status !== 201) throw new Error(`push manifest: ${res.status} ${await res.text()}`);
  return { ...manifest, config, layers };
}

export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}
