// Tiny OCI Distribution push client used to seed registries identically:
//   POST /v2/<repo>/blobs/uploads/  -> 202 + Location
//   PUT  <location>&digest=<d>      (monolithic, streamed body with Content-Length)
//   PUT  /v2/<repo>/manifests/<tag>
import { createReadStream } from 'node:fs';
import { request, header } from './http.ts';
import { BrokenRunError } from './proc.ts';
import { sha256Digest, type BlobFile } from './blob.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

type BlobSource = { file: BlobFile } | { bytes: Buffer };

function describe(res: { status: number; body: Buffer }): string {
  return `HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`;
}

export async function pushBlob(baseUrl: string, repo: string, src: BlobSource): Promise<Descriptor> {
  const digest = 'file' in src ? src.file.digest : sha256Digest(src.bytes);
  const size = 'file' in src ? src.file.size : src.bytes.length;
  const start = await request(`${baseUrl}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'Content-Length': 0 },
  });
  const location = header(start, 'location');
  if (start.status !== 202 || location === undefined) {
    throw new BrokenRunError(`push ${repo}: start upload failed: ${describe(start)}`);
  }
  const url = new URL(location, baseUrl).href;
  const putUrl = `${url}${url.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
  const body = 'file' in src ? createReadStream(src.file.path, { highWaterMark: 1024 * 1024 }) : src.bytes;
  const put = await request(putUrl, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
    body,
    timeoutMs: 300_000,
  });
  if (put.status !== 201) {
    throw new BrokenRunError(`push ${repo}: blob ${digest} upload failed: ${describe(put)}`);
  }
  const echoed = header(put, 'docker-content-digest');
  if (echoed !== undefined && echoed !== digest) {
    throw new BrokenRunError(`push ${repo}: server stored ${echoed}, expected ${digest}`);
  }
  return { mediaType: OCI_LAYER, digest, size };
}

export interface PushedManifest {
  digest: string;
  bytes: Buffer;
  mediaType: string;
}

export async function pushManifest(
  baseUrl: string,
  repo: string,
  reference: string,
  bytes: Buffer,
  mediaType = OCI_MANIFEST,
): Promise<PushedManifest> {
  const digest = sha256Digest(bytes);
  const res = await request(`${baseUrl}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType },
    body: bytes,
  });
  if (res.status !== 201) {
    throw new BrokenRunError(`push ${repo}:${reference}: manifest upload failed: ${describe(res)}`);
  }
  const echoed = header(res, 'docker-content-digest');
  if (echoed !== undefined && echoed !== digest) {
    throw new BrokenRunError(`push ${repo}:${reference}: server reports manifest ${echoed}, expected ${digest}`);
  }
  return { digest, bytes, mediaType };
}

/** Canonical OCI image manifest bytes (stable key order => same digest on every registry). */
export function imageManifest(config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): Buffer {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  if (annotations !== undefined) doc['annotations'] = annotations;
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

/** Minimal valid image config for the given layers. */
export function imageConfig(layerDigests: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layerDigests },
      history: layerDigests.map(() => ({ created_by: 'cistern bench' })),
    }),
    'utf8',
  );
}

export interface SeededImage {
  repo: string;
  tag: string;
  manifest: PushedManifest;
  layers: Descriptor[];
  config: Descriptor;
}

/** Push layers + config + an OCI image manifest tagged `tag`. */
export async function seedImage(baseUrl: string, repo: string, tag: string, layers: BlobSource[]): Promise<SeededImage> {
  const layerDescs: Descriptor[] = [];
  for (const l of layers) layerDescs.push(await pushBlob(baseUrl, repo, l));
  // Layers are not real tarballs, so diff_ids just reuse the blob digests.
  const cfgBytes = imageConfig(layerDescs.map((l) => l.digest));
  const cfg = { ...(await pushBlob(baseUrl, repo, { bytes: cfgBytes })), mediaType: OCI_CONFIG };
  const manifest = await pushManifest(baseUrl, repo, tag, imageManifest(cfg, layerDescs));
  return { repo, tag, manifest, layers: layerDescs, config: cfg };
}

/** GET the manifest back and check it is byte-identical to what was pushed. */
export async function verifyManifest(baseUrl: string, img: SeededImage): Promise<void> {
  const res = await request(`${baseUrl}/v2/${img.repo}/manifests/${img.tag}`, {
    headers: { Accept: img.manifest.mediaType },
  });
  if (res.status !== 200 || !res.body.equals(img.manifest.bytes)) {
    throw new BrokenRunError(
      `${baseUrl}: GET manifest ${img.repo}:${img.tag} did not return the pushed bytes (${describe(res)})`,
    );
  }
  const ct = header(res, 'content-type');
  if (ct !== undefined && !ct.startsWith(img.manifest.mediaType)) {
    throw new BrokenRunError(`${baseUrl}: manifest served as ${ct}, expected ${img.manifest.mediaType}`);
  }
}
