import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.ts';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** Inclusive byte range, as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A stream whose bytes are a range of a local file may say so, and an HTTP surface may then send the
 * file itself (as Go's io.Copy turns to sendfile for an *os.File) rather than pump the stream.
 */
export interface FileBacked {
  file?: { path: string; start: number; end: number };
}

export interface UploadInfo {
  id: string;
  size: number;
  modifiedAt: Date;
}

/**
 * Content-addressed bytes, shared by every repository; it knows nothing of repositories.
 *
 * Uploads accumulate under an id and become a blob only through `commitUpload`, which verifies the
 * digest first: a blob that `stat` or `read` can see is always complete and correct, whatever
 * instant the process dies at.
 */
export interface BlobStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Throws BLOB_UNKNOWN when absent. The stream ends early with an error if `signal` aborts. */
  read(digest: Digest, options?: { range?: ByteRange; signal?: AbortSignal }): Promise<Readable>;
  delete(digest: Digest): Promise<boolean>;
  /** Every committed blob, in no particular order, with when it was written (for garbage collection). */
  list(): AsyncIterable<BlobInfo & { modifiedAt: Date }>;

  startUpload(): Promise<string>;
  /**
   * Appends the whole of `source`; returns the upload's size afterwards. Throws BLOB_UPLOAD_UNKNOWN.
   * `onProgress` hears the size each time more bytes are durably readable through `readUpload`.
   */
  appendUpload(id: string, source: Readable, options?: { signal?: AbortSignal; onProgress?: (size: number) => void }): Promise<number>;
  /** Reads bytes already appended to an upload (a cache fill streams to clients this way). */
  readUpload(id: string, range: ByteRange, signal?: AbortSignal): Promise<Readable>;
  uploadSize(id: string): Promise<number>;
  /**
   * Verifies the upload against `expected` and makes it visible as a blob. On a mismatch the upload is
   * discarded and DIGEST_INVALID thrown; nothing becomes visible.
   */
  commitUpload(id: string, expected: Digest): Promise<BlobInfo>;
  cancelUpload(id: string): Promise<void>;
  listUploads(): AsyncIterable<UploadInfo>;
  close(): Promise<void>;
}
