// Deterministic pseudo-random blobs, streamed to disk in 1 MiB chunks (a
// 256 MiB blob is never held in memory). The keystream of AES-128-CTR over
// zeros, keyed by sha256(seed), is incompressible, fast (AES-NI) and the same
// on every run, so digests are stable across runs and machines.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export const MiB = 1024 * 1024;

export interface BlobFile {
  path: string;
  size: number;
  /** "sha256:<hex>" */
  digest: string;
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Deterministic bytes in memory — only for small blobs (configs, small layers). */
export function deterministicBytes(size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export async function generateBlobFile(path: string, size: number, seed: string): Promise<BlobFile> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(MiB);
  const out = createWriteStream(path, { highWaterMark: 4 * MiB });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined); // observed via the races below
  let remaining = size;
  while (remaining > 0) {
    const n = Math.min(remaining, MiB);
    const chunk = cipher.update(n === MiB ? zeros : zeros.subarray(0, n));
    hash.update(chunk);
    remaining -= n;
    if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}
