import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { randomUUID, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../../domain/errors.ts';
import { failpoint } from '../../failpoints.ts';
import { digestAlgorithm, digestHex, hasher, type Digest, type DigestAlgorithm } from '../../domain/digest.ts';
import type { BlobInfo, BlobStore, ByteRange, FileBacked, UploadInfo } from '../blob-store.ts';

const UPLOAD_ID = /^[a-f0-9-]{36}$/;

/**
 * Blobs as files under `<root>/blobs/<algorithm>/<first two hex>/<hex>`; uploads as files under
 * `<root>/uploads/<id>`. A commit fsyncs the upload, verifies its digest, then renames it into place,
 * so a visible blob is complete and correct at every instant, crash or not.
 */
export class FilesystemBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly uploadsDir: string;
  /** Running sha256 of uploads this process has written, so a commit need not re-read the file. */
  private readonly hashes = new Map<string, { hash: Hash; size: number }>();

  private constructor(root: string) {
    this.blobsDir = join(root, 'blobs');
    this.uploadsDir = join(root, 'uploads');
  }

  static async open(root: string): Promise<FilesystemBlobStore> {
    const store = new FilesystemBlobStore(root);
    await mkdir(store.blobsDir, { recursive: true });
    await mkdir(store.uploadsDir, { recursive: true });
    return store;
  }

  private blobPath(digest: Digest): string {
    const hex = digestHex(digest);
    return join(this.blobsDir, digestAlgorithm(digest), hex.slice(0, 2), hex);
  }

  private uploadPath(id: string): string {
    if (!UPLOAD_ID.test(id)) throw uploadUnknown();
    return join(this.uploadsDir, id);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return { digest, size: info.size };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: Digest, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    let handle;
    try {
      handle = await open(this.blobPath(digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
      throw err;
    }
    const { range, signal } = options;
    const end = range ? range.end : (await handle.stat()).size - 1;
    const stream = handle.createReadStream({
      ...(range && { start: range.start, end: range.end }),
      ...(signal && { signal }),
      highWaterMark: 1 << 20,
    });
    return Object.assign(stream, { file: { path: this.blobPath(digest), start: range?.start ?? 0, end } } satisfies FileBacked);
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.blobPath(digest));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo & { modifiedAt: Date }> {
    for (const algorithm of await readdirOrEmpty(this.blobsDir)) {
      for (const prefix of await readdirOrEmpty(join(this.blobsDir, algorithm))) {
        for (const hex of await readdirOrEmpty(join(this.blobsDir, algorithm, prefix))) {
          const info = await stat(join(this.blobsDir, algorithm, prefix, hex)).catch(() => undefined);
          if (info) yield { digest: `${algorithm}:${hex}` as Digest, size: info.size, modifiedAt: info.mtime };
        }
      }
    }
  }

  async startUpload(): Promise<string> {
    const id = randomUUID();
    const handle = await open(this.uploadPath(id), 'wx', 0o600);
    await handle.close();
    this.hashes.set(id, { hash: hasher('sha256'), size: 0 });
    return id;
  }

  async uploadSize(id: string): Promise<number> {
    try {
      return (await stat(this.uploadPath(id))).size;
    } catch (err) {
      if (isNotFound(err)) throw uploadUnknown();
      throw err;
    }
  }

  async appendUpload(
    id: string,
    source: Readable,
    options: { signal?: AbortSignal; onProgress?: (size: number) => void } = {},
  ): Promise<number> {
    const path = this.uploadPath(id);
    const start = await this.uploadSize(id);
    let running = this.hashes.get(id);
    if (running && running.size !== start) {
      // An earlier append failed part-way: the hash no longer matches the file. Re-hash at commit.
      this.hashes.delete(id);
      running = undefined;
    }
    const handle = await open(path, 'a');
    let size = start;
    const { onProgress } = options;
    // Hash and count only what the file has accepted, so the running hash and the file never disagree.
    // writev takes every chunk that queued up during the previous write in one system call.
    const accepted = (chunks: Buffer[]) => {
      for (const chunk of chunks) {
        size += chunk.length;
        running?.hash.update(chunk);
      }
      onProgress?.(size);
    };
    const sink = new Writable({
      highWaterMark: 4 << 20,
      write(chunk: Buffer, _encoding, done) {
        handle.write(chunk).then(() => {
          accepted([chunk]);
          done();
        }, done);
      },
      writev(entries, done) {
        const chunks = entries.map((entry) => entry.chunk as Buffer);
        handle.writev(chunks).then(() => {
          accepted(chunks);
          done();
        }, done);
      },
    });
    try {
      await pipeline(source, sink, ...(options.signal ? [{ signal: options.signal }] : []));
    } catch (err) {
      if (running) running.size = size;
      throw err;
    } finally {
      await handle.close();
    }
    if (running) running.size = size;
    return size;
  }

  async readUpload(id: string, range: ByteRange, signal?: AbortSignal): Promise<Readable> {
    let handle;
    try {
      handle = await open(this.uploadPath(id), 'r');
    } catch (err) {
      if (isNotFound(err)) throw uploadUnknown();
      throw err;
    }
    return handle.createReadStream({ start: range.start, end: range.end, highWaterMark: 1 << 20, ...(signal && { signal }) });
  }

  async commitUpload(id: string, expected: Digest): Promise<BlobInfo> {
    const path = this.uploadPath(id);
    const size = await this.uploadSize(id);
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    const algorithm = digestAlgorithm(expected);
    const running = this.hashes.get(id);
    const actual =
      running && running.size === size && algorithm === 'sha256'
        ? `sha256:${running.hash.digest('hex')}`
        : await hashFile(path, algorithm);
    this.hashes.delete(id);
    if (actual !== expected) {
      await rm(path, { force: true });
      throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
        expected,
        actual,
      });
    }
    const target = this.blobPath(expected);
    await mkdir(join(target, '..'), { recursive: true });
    failpoint('blob-commit-before-rename');
    // Same content either way: if the blob already exists, replacing it is harmless.
    await rename(path, target);
    await syncDirectory(join(target, '..'));
    failpoint('blob-commit-after-rename');
    return { digest: expected, size };
  }

  async cancelUpload(id: string): Promise<void> {
    this.hashes.delete(id);
    await rm(this.uploadPath(id), { force: true });
  }

  async *listUploads(): AsyncIterable<UploadInfo> {
    for (const id of await readdirOrEmpty(this.uploadsDir)) {
      if (!UPLOAD_ID.test(id)) continue;
      const info = await stat(join(this.uploadsDir, id)).catch(() => undefined);
      if (info) yield { id, size: info.size, modifiedAt: info.mtime };
    }
  }

  async close(): Promise<void> {
    this.hashes.clear();
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = hasher(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function uploadUnknown(): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
}
