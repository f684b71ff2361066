import type { Digest } from '../domain/digest.ts';
import type { Descriptor } from '../domain/manifest.ts';

/** A page of names in lexical order, continuing after `last`. */
export interface PageRequest {
  last?: string;
  limit: number;
}

export interface RepositoryRecord {
  name: string;
  createdAt: Date;
}

export interface ManifestRecord {
  repository: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** The manifest exactly as pushed. */
  content: Buffer;
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
  pushedAt: Date;
  lastPulledAt?: Date;
}

export interface NewManifest {
  repository: string;
  digest: Digest;
  mediaType: string;
  content: Buffer;
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Blobs and child manifests it references, kept for garbage collection and deletion checks. */
  references: { blobs: Digest[]; manifests: Digest[] };
  tag?: string;
  at: Date;
}

export interface UploadSession {
  id: string;
  repository: string;
  startedAt: Date;
  updatedAt: Date;
}

export interface PullRecord {
  repository: string;
  digest: Digest;
  at: Date;
}

export interface RepositoryMetadata {
  get(name: string): Promise<RepositoryRecord | undefined>;
  list(page: PageRequest): Promise<string[]>;
}

export interface ManifestMetadata {
  get(repository: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /**
   * Stores a manifest, its references and optionally a tag in one transaction, creating the
   * repository if it is new. Storing the same digest again only moves the tag.
   */
  put(manifest: NewManifest): Promise<void>;
  /** Deletes the manifest and every tag pointing at it. */
  delete(repository: string, digest: Digest): Promise<boolean>;
  /** Manifests whose subject is `digest`, as descriptors. */
  referrers(repository: string, subject: Digest): Promise<Descriptor[]>;
  /** Coarse last-pull times, written in batches rather than once per pull. */
  recordPulls(pulls: PullRecord[]): Promise<void>;
}

export interface TagMetadata {
  resolve(repository: string, tag: string): Promise<Digest | undefined>;
  list(repository: string, page: PageRequest): Promise<string[]>;
  delete(repository: string, tag: string): Promise<boolean>;
}

/** Which blobs each repository may read: content is shared, access is per repository. */
export interface BlobLinkMetadata {
  /** The blob's size if `repository` may read it. */
  get(repository: string, digest: Digest): Promise<number | undefined>;
  link(repository: string, digest: Digest, size: number, at: Date): Promise<void>;
  unlink(repository: string, digest: Digest): Promise<boolean>;
}

export interface UploadMetadata {
  create(session: UploadSession): Promise<void>;
  get(id: string): Promise<UploadSession | undefined>;
  touch(id: string, at: Date): Promise<void>;
  delete(id: string): Promise<void>;
  /** Sessions not touched since `before`. */
  listStale(before: Date): Promise<UploadSession[]>;
}

export interface MetadataStore {
  repositories: RepositoryMetadata;
  manifests: ManifestMetadata;
  tags: TagMetadata;
  blobLinks: BlobLinkMetadata;
  uploads: UploadMetadata;
  close(): Promise<void>;
}
