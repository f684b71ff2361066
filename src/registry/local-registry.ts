import type { Readable } from 'node:stream';
import { RegistryError } from '../domain/errors.ts';
import { failpoint } from '../failpoints.ts';
import { digestAlgorithm, digestOf, type Digest } from '../domain/digest.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../domain/manifest.ts';
import type { Reference, RepositoryName } from '../domain/reference.ts';
import type { BlobInfo, BlobStore } from '../storage/blob-store.ts';
import type { MetadataStore, PageRequest, TagState } from '../storage/metadata-store.ts';
import { ByteLru } from './byte-lru.ts';
import type { BlobLocks } from './blob-locks.ts';
import { PullRecorder } from './pull-recorder.ts';
import type { BlobRead, BlobReadOptions, PullOptions, Registry, StoredManifest, UploadStatus } from './registry.ts';

export interface LocalRegistryOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Memory for hot manifests and tags. */
  manifestCacheBytes: number;
  /** How often last-pull times are written. */
  pullFlushIntervalMs: number;
  /** Shared with garbage collection: making a blob reachable and deleting it never interleave. */
  locks: BlobLocks;
  now?: () => Date;
  onBackgroundError?: (err: unknown) => void;
  /** A write that may have created or deleted `repository` (so whoever remembers which names exist can forget). */
  onRepositoryWrite?: (repository: string) => void;
}

/** The registry on Cistern's own storage: what clients push, and what the cache fills. */
export class LocalRegistry implements Registry {
  private readonly blobs: BlobStore;
  private readonly metadata: MetadataStore;
  private readonly locks: BlobLocks;
  private readonly now: () => Date;
  private readonly manifestCache: ByteLru<StoredManifest>;
  /** Tag to digest; small entries, so counted at a nominal size. */
  private readonly tagCache: ByteLru<Digest>;
  private readonly pulls: PullRecorder;
  /** Uploads with a request writing to them: a second writer would interleave bytes. */
  private readonly busyUploads = new Set<string>();
  private readonly onRepositoryWrite: (repository: string) => void;

  constructor(options: LocalRegistryOptions) {
    this.onRepositoryWrite = options.onRepositoryWrite ?? (() => {});
    this.blobs = options.blobs;
    this.metadata = options.metadata;
    this.locks = options.locks;
    this.now = options.now ?? (() => new Date());
    this.manifestCache = new ByteLru(options.manifestCacheBytes);
    this.tagCache = new ByteLru(Math.max(1024, options.manifestCacheBytes / 8));
    this.pulls = new PullRecorder(options.metadata.manifests, options.pullFlushIntervalMs, options.onBackgroundError ?? (() => {}));
  }

  async close(): Promise<void> {
    await this.pulls.close();
  }

  /** Writes pending last-pull times now (before lifecycle rules that read them). */
  flushPulls(): Promise<void> {
    return this.pulls.flush();
  }

  catalog(page: PageRequest): Promise<string[]> {
    return this.metadata.repositories.list(page);
  }

  async getManifest(repository: RepositoryName, reference: Reference, options: PullOptions = {}): Promise<StoredManifest> {
    const digest = reference.kind === 'digest' ? reference.digest : await this.resolveTag(repository, reference.tag);
    const manifest = digest && (await this.loadManifest(repository, digest));
    if (!manifest) {
      throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', {
        name: repository,
        reference: reference.kind === 'tag' ? reference.tag : reference.digest,
      });
    }
    if (options.pull !== false) this.recordPull(repository, manifest.digest);
    return manifest;
  }

  /** Counts a pull of a manifest the caller already holds (lifecycle policies read last-pull times). */
  recordPull(repository: RepositoryName, digest: Digest): void {
    this.pulls.record(repository, digest, this.now());
  }

  private async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    const key = `${repository}:${tag}`;
    const cached = this.tagCache.get(key);
    if (cached) return cached;
    const digest = await this.metadata.tags.resolve(repository, tag);
    if (digest) this.tagCache.set(key, digest, key.length + digest.length + 64);
    return digest;
  }

  private async loadManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined> {
    const key = `${repository}@${digest}`;
    const cached = this.manifestCache.get(key);
    if (cached) return cached;
    const record = await this.metadata.manifests.get(repository, digest);
    if (!record) return undefined;
    const manifest: StoredManifest = { digest: record.digest, mediaType: record.mediaType, content: record.content };
    this.manifestCache.set(key, manifest, record.content.length + key.length + 128);
    return manifest;
  }

  async putManifest(
    repository: RepositoryName,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
  ): Promise<{ digest: Digest; subject?: Digest }> {
    const parsed = parseManifest(body, contentType);
    let digest = parsed.digest;
    if (reference.kind === 'digest') {
      digest = digestAlgorithm(reference.digest) === 'sha256' ? parsed.digest : digestOf(body, digestAlgorithm(reference.digest));
      if (digest !== reference.digest) {
        throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
          expected: reference.digest,
          actual: digest,
        });
      }
    }
    await this.checkReferences(repository, parsed.blobs, parsed.manifests);
    if (reference.kind === 'tag') await this.checkMutable(repository, reference.tag, digest);
    await this.store(repository, digest, parsed, body, reference.kind === 'tag' ? reference.tag : undefined);
    this.onRepositoryWrite(repository);
    return { digest, ...(parsed.subject && { subject: parsed.subject.digest }) };
  }

  /** In an IMMUTABLE repository (ECR's setting) a tag, once pushed, never moves. */
  private async checkMutable(repository: string, tag: string, digest: Digest): Promise<void> {
    const current = await this.metadata.tags.resolve(repository, tag);
    if (!current || current === digest) return;
    const repo = await this.metadata.repositories.get(repository);
    if (repo?.settings?.imageTagMutability === 'IMMUTABLE') {
      throw new RegistryError('TAG_INVALID', `The image tag '${tag}' already exists in the '${repository}' repository and cannot be overwritten because the repository is immutable.`);
    }
  }

  private async store(repository: string, digest: Digest, parsed: ParsedManifest, body: Buffer, tag: string | undefined): Promise<void> {
    await this.metadata.manifests.put({
      repository,
      digest,
      mediaType: parsed.mediaType,
      content: body,
      ...(parsed.subject && { subject: parsed.subject.digest }),
      ...(parsed.artifactType && { artifactType: parsed.artifactType }),
      ...(parsed.annotations && { annotations: parsed.annotations }),
      references: { blobs: parsed.blobs.map((d) => d.digest), manifests: parsed.manifests.map((d) => d.digest) },
      ...(tag !== undefined && { tag }),
      at: this.now(),
    });
    if (tag !== undefined) this.tagCache.delete(`${repository}:${tag}`);
  }

  private async checkReferences(repository: string, blobs: Descriptor[], manifests: Descriptor[]): Promise<void> {
    for (const blob of blobs) {
      const size = await this.metadata.blobLinks.get(repository, blob.digest);
      if (size === undefined) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', {
          digest: blob.digest,
        });
      }
      if (size !== blob.size) {
        throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', {
          reason: `descriptor of ${blob.digest} says ${blob.size} bytes; the blob has ${size}`,
        });
      }
    }
    for (const child of manifests) {
      if (!(await this.loadManifest(repository, child.digest))) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', {
          digest: child.digest,
        });
      }
    }
  }

  /**
   * Stores a manifest fetched from an upstream. Its digest was computed from these bytes by the caller;
   * the blobs it names arrive later, when a client asks for them, so references are not checked.
   */
  /** Stores a manifest the cache fetched and parsed (its blobs arrive later, when pulled). */
  async cacheManifest(repository: RepositoryName, digest: Digest, body: Buffer, parsed: ParsedManifest, tag?: string): Promise<StoredManifest> {
    await this.store(repository, digest, parsed, body, tag);
    return { digest, mediaType: parsed.mediaType, content: body };
  }

  tagState(repository: string, tag: string): Promise<TagState | undefined> {
    return this.metadata.tags.state(repository, tag);
  }

  /** Drops manifests and tags held in memory (the store was changed by someone else): of `repository`, or all. */
  forgetCached(repository?: string): void {
    if (repository === undefined) {
      this.manifestCache.clear();
      this.tagCache.clear();
      return;
    }
    // Keys are `name@digest` and `name:tag`; names contain neither character.
    this.manifestCache.deleteWhere((key) => key.startsWith(`${repository}@`));
    this.tagCache.deleteWhere((key) => key.startsWith(`${repository}:`));
  }

  /** Deletes a repository with everything in it; its blobs go when garbage collection finds them unused. */
  async deleteRepository(repository: string): Promise<boolean> {
    const deleted = await this.metadata.repositories.delete(repository);
    this.onRepositoryWrite(repository);
    this.manifestCache.clear();
    this.tagCache.clear();
    return deleted;
  }

  /** Gives a repository access to a blob already in the store. */
  async linkBlob(repository: RepositoryName, digest: Digest, size: number): Promise<boolean> {
    return this.locks.with(digest, async () => {
      if (!(await this.blobs.stat(digest))) return false;
      await this.metadata.blobLinks.link(repository, digest, size, this.now());
      return true;
    });
  }

  async deleteManifest(repository: RepositoryName, reference: Reference): Promise<void> {
    if (reference.kind === 'tag') {
      this.tagCache.delete(`${repository}:${reference.tag}`);
      if (!(await this.metadata.tags.delete(repository, reference.tag))) {
        throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { name: repository, reference: reference.tag });
      }
      return;
    }
    const deleted = await this.metadata.manifests.delete(repository, reference.digest);
    this.manifestCache.delete(`${repository}@${reference.digest}`);
    // Tags that pointed at it are gone from the store; forget every cached tag rather than track which.
    this.tagCache.clear();
    if (!deleted) {
      throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { name: repository, reference: reference.digest });
    }
  }

  async listTags(repository: RepositoryName, page: PageRequest): Promise<string[]> {
    const tags = await this.metadata.tags.list(repository, page);
    if (tags.length === 0 && !(await this.metadata.repositories.get(repository))) {
      throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name: repository });
    }
    return tags;
  }

  referrers(repository: RepositoryName, subject: Digest): Promise<Descriptor[]> {
    return this.metadata.manifests.referrers(repository, subject);
  }

  async statBlob(repository: RepositoryName, digest: Digest): Promise<BlobInfo> {
    const size = await this.metadata.blobLinks.get(repository, digest);
    if (size === undefined) throw blobUnknown(digest);
    return { digest, size };
  }

  async readBlob(repository: RepositoryName, digest: Digest, options: BlobReadOptions = {}): Promise<BlobRead> {
    return this.openBlob(await this.statBlob(repository, digest), options);
  }

  /** Streams a blob the caller has already found readable (`statBlob`), without looking it up again. */
  async openBlob({ digest, size }: BlobInfo, options: BlobReadOptions = {}): Promise<BlobRead> {
    const range = options.range?.(size);
    const stream = await this.blobs.read(digest, { ...(range && { range }), ...(options.signal && { signal: options.signal }) });
    return { size, ...(range && { range }), stream };
  }

  async deleteBlob(repository: RepositoryName, digest: Digest): Promise<void> {
    if (!(await this.metadata.blobLinks.unlink(repository, digest))) throw blobUnknown(digest);
  }

  async startUpload(repository: RepositoryName): Promise<UploadStatus> {
    const id = await this.blobs.startUpload();
    const at = this.now();
    await this.metadata.uploads.create({ id, repository, startedAt: at, updatedAt: at });
    return { id, size: 0 };
  }

  async uploadStatus(repository: RepositoryName, id: string): Promise<UploadStatus> {
    await this.session(repository, id);
    return { id, size: await this.blobs.uploadSize(id) };
  }

  async appendUpload(
    repository: RepositoryName,
    id: string,
    body: Readable,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<UploadStatus> {
    await this.session(repository, id);
    return this.exclusively(id, async () => {
      const size = await this.append(id, body, options);
      await this.metadata.uploads.touch(id, this.now());
      return { id, size };
    });
  }

  private async append(id: string, body: Readable, options: { offset?: number; signal?: AbortSignal }): Promise<number> {
    if (options.offset !== undefined) {
      const size = await this.blobs.uploadSize(id);
      if (options.offset !== size) {
        body.resume();
        throw new RegistryError('RANGE_INVALID', 'invalid content range', {
          reason: `chunk starts at ${options.offset}; the upload has ${size} bytes`,
          size,
        });
      }
    }
    return this.blobs.appendUpload(id, body, options.signal ? { signal: options.signal } : {});
  }

  async finishUpload(
    repository: RepositoryName,
    id: string,
    digest: Digest,
    body?: Readable,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<BlobInfo> {
    await this.session(repository, id);
    return this.exclusively(id, async () => {
      if (body) await this.append(id, body, options);
      const blob = await this.locks.with(digest, async () => {
        let committed: BlobInfo;
        try {
          committed = await this.blobs.commitUpload(id, digest);
        } catch (err) {
          // A failed verification discards the upload: nothing of it is kept.
          if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') await this.metadata.uploads.delete(id);
          throw err;
        }
        await this.metadata.blobLinks.link(repository, digest, committed.size, this.now());
        this.onRepositoryWrite(repository);
        return committed;
      });
      failpoint('upload-after-link');
      await this.metadata.uploads.delete(id);
      return blob;
    });
  }

  async cancelUpload(repository: RepositoryName, id: string): Promise<void> {
    await this.session(repository, id);
    await this.blobs.cancelUpload(id);
    await this.metadata.uploads.delete(id);
  }

  async mountBlob(repository: RepositoryName, digest: Digest, from: RepositoryName): Promise<BlobInfo | undefined> {
    const size = await this.metadata.blobLinks.get(from, digest);
    if (size === undefined || !(await this.linkBlob(repository, digest, size))) return undefined;
    this.onRepositoryWrite(repository);
    return { digest, size };
  }

  /** Removes upload sessions untouched for `maxAgeMs`, and upload files that have no session. */
  async expireUploads(maxAgeMs: number): Promise<number> {
    const cutoff = new Date(this.now().getTime() - maxAgeMs);
    let removed = 0;
    for (const session of await this.metadata.uploads.listStale(cutoff)) {
      if (this.busyUploads.has(session.id)) continue;
      await this.blobs.cancelUpload(session.id);
      await this.metadata.uploads.delete(session.id);
      removed++;
    }
    for await (const upload of this.blobs.listUploads()) {
      if (upload.modifiedAt < cutoff && !this.busyUploads.has(upload.id) && !(await this.metadata.uploads.get(upload.id))) {
        await this.blobs.cancelUpload(upload.id);
        removed++;
      }
    }
    return removed;
  }

  private async session(repository: string, id: string): Promise<void> {
    const session = await this.metadata.uploads.get(id);
    if (!session || session.repository !== repository) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { id });
    }
  }

  private async exclusively<T>(id: string, work: () => Promise<T>): Promise<T> {
    if (this.busyUploads.has(id)) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', 'blob upload invalid', { reason: 'another request is writing to this upload' });
    }
    this.busyUploads.add(id);
    try {
      return await work();
    } finally {
      this.busyUploads.delete(id);
    }
  }
}

function blobUnknown(digest: Digest): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
}
