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
  /** The prefix of the cache rule that created it; absent for repositories pushed to. */
  cacheRule?: string;
  /** Settings applied from a creation template when it was created. */
  settings?: RepositorySettings;
}

export interface RepositorySettings {
  imageTagMutability?: 'MUTABLE' | 'IMMUTABLE';
  lifecyclePolicy?: string;
  scanOnPush?: boolean;
  resourceTags?: { Key: string; Value: string }[];
  /** The template prefix the settings came from. */
  template?: string;
  /** When the lifecycle policy last ran here (ISO 8601). */
  lifecycleEvaluatedAt?: string;
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
  /** Replaces the settings of an existing repository; false when there is none. */
  updateSettings(name: string, settings: RepositorySettings): Promise<boolean>;
  /** Deletes the repository with its manifests, tags and blob links. */
  delete(name: string): Promise<boolean>;
  /** Creates the repository unless it exists; returns true when this call created it. */
  create(name: string, options: { cacheRule?: string; settings?: RepositorySettings }, at: Date): Promise<boolean>;
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
  /** Every manifest of a repository with its tags, oldest first (for listings and lifecycle). */
  list(repository: string): Promise<ManifestSummary[]>;
  /** Whether a manifest in the repository names `digest` as a config or layer. */
  referencesBlob(repository: string, digest: Digest): Promise<boolean>;
}

export interface ManifestSummary {
  digest: Digest;
  mediaType: string;
  size: number;
  tags: string[];
  /** Total size of the blobs the manifest references, as far as the repository holds them. */
  blobBytes: number;
  /** Child manifests, when this is an index. */
  children: Digest[];
  /** A platform manifest of an index in the same repository: it lives and dies with its index. */
  inIndex: boolean;
  pushedAt: Date;
  lastPulledAt?: Date;
}

export interface TagState {
  digest: Digest;
  /** When the tag was last confirmed against its upstream (or pushed). */
  checkedAt: Date;
}

export interface TagMetadata {
  resolve(repository: string, tag: string): Promise<Digest | undefined>;
  state(repository: string, tag: string): Promise<TagState | undefined>;
  markChecked(repository: string, tag: string, at: Date): Promise<void>;
  list(repository: string, page: PageRequest): Promise<string[]>;
  delete(repository: string, tag: string): Promise<boolean>;
}

/** Which blobs each repository may read: content is shared, access is per repository. */
export interface BlobLinkMetadata {
  /** The blob's size if `repository` may read it. */
  get(repository: string, digest: Digest): Promise<number | undefined>;
  link(repository: string, digest: Digest, size: number, at: Date): Promise<void>;
  unlink(repository: string, digest: Digest): Promise<boolean>;
  /** Links older than `before` that no manifest of their repository references (garbage candidates). */
  unreferenced(before: Date): Promise<{ repository: string; digest: Digest }[]>;
  /** Digests some manifest references or some repository linked at or after `linkedSince`: what GC keeps. */
  liveDigests(linkedSince: Date): Promise<Set<string>>;
  isLive(digest: Digest): Promise<boolean>;
  /** Bytes of the distinct blobs linked by repositories of a cache rule (or by every repository). */
  storedBytes(cacheRule?: string): Promise<number>;
}

export interface UploadMetadata {
  create(session: UploadSession): Promise<void>;
  get(id: string): Promise<UploadSession | undefined>;
  touch(id: string, at: Date): Promise<void>;
  delete(id: string): Promise<void>;
  /** Sessions not touched since `before`. */
  listStale(before: Date): Promise<UploadSession[]>;
}

export interface SecretRecord {
  name: string;
  /** Sealed by the secret box; the store never sees plaintext. */
  ciphertext: Buffer;
  description?: string;
  createdAt: Date;
  updatedAt: Date;
  /** Set while the secret waits out its recovery window; such a secret cannot be used. */
  deletionDate?: Date;
}

export interface SecretMetadata {
  /** A usable secret (not scheduled for deletion). */
  get(name: string): Promise<SecretRecord | undefined>;
  /** Any secret of that name, including one scheduled for deletion. */
  find(name: string): Promise<SecretRecord | undefined>;
  put(secret: { name: string; ciphertext: Buffer; description?: string }, at: Date): Promise<void>;
  list(options?: { includeScheduled?: boolean }): Promise<SecretRecord[]>;
  /** Removes it for good at `at` (now, or when its recovery window ends); secrets past it are purged. */
  scheduleDeletion(name: string, at: Date): Promise<void>;
  purgeDeleted(now: Date): Promise<number>;
  delete(name: string): Promise<boolean>;
}

/** Where a rule or template came from: the config file seeds, the API manages. */
export type RecordSource = 'config' | 'api';

export interface CacheRuleRecord {
  prefix: string;
  upstreamUrl: string;
  upstreamKind: string;
  upstreamPrefix?: string;
  /** Name of the secret holding the upstream credential. */
  credentialSecret?: string;
  /** Per-rule tuning (freshness, concurrency, ...), validated by the cache layer. */
  settings: Record<string, unknown>;
  source: RecordSource;
  createdAt: Date;
  updatedAt: Date;
}

export interface CacheRuleMetadata {
  list(): Promise<CacheRuleRecord[]>;
  get(prefix: string): Promise<CacheRuleRecord | undefined>;
  /** Creates or replaces; createdAt survives a replace. */
  put(rule: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void>;
  delete(prefix: string): Promise<boolean>;
}

export interface CreationTemplateRecord {
  prefix: string;
  /** The template as ECR describes it (appliedFor, lifecyclePolicy, ...). */
  body: Record<string, unknown>;
  source: RecordSource;
  createdAt: Date;
  updatedAt: Date;
}

export interface CreationTemplateMetadata {
  list(): Promise<CreationTemplateRecord[]>;
  put(template: Omit<CreationTemplateRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void>;
  delete(prefix: string): Promise<boolean>;
}

export interface UserRecord {
  name: string;
  /** IAM-style policy documents (JSON), evaluated by auth/. */
  policy: unknown[];
  createdAt: Date;
}

export interface AccessKeyRecord {
  id: string;
  userName: string;
  /** Sealed by the secret box. */
  sealedSecret: Buffer;
  active: boolean;
  createdAt: Date;
}

export interface IdentityMetadata {
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  putUser(user: { name: string; policy: unknown[] }, at: Date): Promise<void>;
  deleteUser(name: string): Promise<boolean>;
  getKey(id: string): Promise<AccessKeyRecord | undefined>;
  listKeys(userName: string): Promise<AccessKeyRecord[]>;
  putKey(key: Omit<AccessKeyRecord, 'createdAt'>, at: Date): Promise<void>;
  deleteKey(id: string): Promise<boolean>;
  /** Registry login tokens (GetAuthorizationToken), stored only as hashes. */
  putLoginToken(hash: string, userName: string, expiresAt: Date): Promise<void>;
  getLoginToken(hash: string): Promise<{ userName: string; expiresAt: Date } | undefined>;
  deleteExpiredLoginTokens(before: Date): Promise<number>;
}

/**
 * Named locks held across every instance that shares the store, for work that should happen once per
 * fleet rather than once per instance (an upstream manifest GET, which Docker Hub counts as a pull).
 * They save duplicate work; nothing may depend on them for correctness (a holder whose connection to the
 * store is lost keeps running while someone else takes the lock).
 */
export interface LockMetadata {
  /** Runs `work` holding `name`; callers of the same name, in this instance or another, wait their turn. */
  with<T>(name: string, work: () => Promise<T>): Promise<T>;
}

export interface ConnectionPoolStats {
  pool: string;
  /** Connections open. */
  total: number;
  idle: number;
  /** Callers queued for a connection. */
  waiting: number;
}

export interface MetadataStore {
  repositories: RepositoryMetadata;
  manifests: ManifestMetadata;
  tags: TagMetadata;
  blobLinks: BlobLinkMetadata;
  uploads: UploadMetadata;
  secrets: SecretMetadata;
  cacheRules: CacheRuleMetadata;
  templates: CreationTemplateMetadata;
  identities: IdentityMetadata;
  locks: LockMetadata;
  /**
   * Calls `onChange` soon after a change that someone else committed (`cistern lifecycle run` on the same
   * database, another instance), so that what is held in memory above the store can be forgotten: with the
   * repositories changed, where the driver can tell, else with none (anything may have changed).
   * Returns a function that stops watching.
   */
  watchExternalChanges(onChange: (repositories?: string[]) => void): () => void;
  /** Resolves when the store answers a trivial query (readiness checks); throws when it cannot. */
  ping(): Promise<void>;
  /** The store's connection pools, for metrics (none for an embedded database). */
  connections(): ConnectionPoolStats[];
  close(): Promise<void>;
}
