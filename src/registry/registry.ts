import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.ts';
import type { Descriptor } from '../domain/manifest.ts';
import type { Reference, RepositoryName } from '../domain/reference.ts';
import type { BlobInfo, ByteRange } from '../storage/blob-store.ts';
import type { PageRequest } from '../storage/metadata-store.ts';

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  /** The manifest exactly as pushed. */
  content: Buffer;
}

/**
 * Asked before anything is imported from an upstream on a caller's behalf; throws DENIED when the
 * caller may not (a read-only identity pulls what is cached but cannot spend upstream quota).
 * `creating` says whether the import would also create the repository.
 */
export type ImportGuard = (creating: boolean) => Promise<void>;

export interface PullOptions {
  /** False for HEAD requests, which do not count as pulls. */
  pull?: boolean;
  guard?: ImportGuard;
}

export interface BlobReadOptions {
  range?: (size: number) => ByteRange | undefined;
  signal?: AbortSignal;
  guard?: ImportGuard;
}

export interface BlobRead {
  size: number;
  range?: ByteRange;
  stream: Readable;
}

export interface UploadStatus {
  id: string;
  /** Bytes received so far. */
  size: number;
}

/**
 * What the HTTP surfaces call. The pull-through cache implements the same interface around the local
 * registry, so a handler never knows whether a repository is cached. Names, references and digests
 * arrive already validated; every method throws RegistryError for anything a client can cause.
 */
export interface Registry {
  catalog(page: PageRequest): Promise<string[]>;

  getManifest(repository: RepositoryName, reference: Reference, options?: PullOptions): Promise<StoredManifest>;
  putManifest(
    repository: RepositoryName,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
  ): Promise<{ digest: Digest; subject?: Digest }>;
  /** By digest: deletes the manifest and its tags. By tag: removes only the tag. */
  deleteManifest(repository: RepositoryName, reference: Reference): Promise<void>;
  listTags(repository: RepositoryName, page: PageRequest): Promise<string[]>;
  referrers(repository: RepositoryName, subject: Digest): Promise<Descriptor[]>;

  statBlob(repository: RepositoryName, digest: Digest, options?: { guard?: ImportGuard }): Promise<BlobInfo>;
  /**
   * Opens a blob. `range` is resolved against the blob's size once that is known (it may throw
   * RANGE_INVALID); the result says which bytes the stream carries.
   */
  readBlob(repository: RepositoryName, digest: Digest, options?: BlobReadOptions): Promise<BlobRead>;
  /** Removes the repository's access to the blob; the bytes go when garbage collection finds them unused. */
  deleteBlob(repository: RepositoryName, digest: Digest): Promise<void>;

  startUpload(repository: RepositoryName): Promise<UploadStatus>;
  uploadStatus(repository: RepositoryName, id: string): Promise<UploadStatus>;
  /** `offset`, when given, must equal the bytes received so far (a chunk out of order is RANGE_INVALID). */
  appendUpload(
    repository: RepositoryName,
    id: string,
    body: Readable,
    options?: { offset?: number; signal?: AbortSignal },
  ): Promise<UploadStatus>;
  finishUpload(
    repository: RepositoryName,
    id: string,
    digest: Digest,
    body?: Readable,
    options?: { offset?: number; signal?: AbortSignal },
  ): Promise<BlobInfo>;
  cancelUpload(repository: RepositoryName, id: string): Promise<void>;
  /** Links a blob `from` another repository; undefined when `from` cannot read it. */
  mountBlob(repository: RepositoryName, digest: Digest, from: RepositoryName): Promise<BlobInfo | undefined>;
}
