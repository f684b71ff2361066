import { createHash } from 'node:crypto';
import { MANIFEST_MEDIA_TYPES } from '../../src/domain/media-types.ts';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export interface Pulled {
  digest: string;
  mediaType: string;
  blobs: string[];
}

/** Pulls an image as a client would: the manifest, then every blob, verifying each blob's digest. */
export async function pull(base: string, repo: string, reference: string, query = ''): Promise<Pulled> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}${query}`, { headers: { Accept: ACCEPT } });
  if (res.status !== 200) throw new Error(`manifest ${repo}:${reference}: ${res.status} ${await res.text()}`);
  const body = Buffer.from(await res.arrayBuffer());
  const manifest = JSON.parse(body.toString('utf8')) as { config?: { digest: string }; layers?: { digest: string }[] };
  const blobs = manifest.config ? [manifest.config.digest, ...(manifest.layers ?? []).map((l) => l.digest)] : [];
  for (const digest of blobs) {
    const blob = await fetch(`${base}/v2/${repo}/blobs/${digest}${query}`);
    if (blob.status !== 200) throw new Error(`blob ${digest}: ${blob.status} ${await blob.text()}`);
    const hash = createHash('sha256');
    for await (const chunk of blob.body!) hash.update(chunk);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) throw new Error(`blob ${digest} arrived as ${actual}`);
  }
  return { digest: res.headers.get('docker-content-digest')!, mediaType: res.headers.get('content-type')!, blobs };
}
