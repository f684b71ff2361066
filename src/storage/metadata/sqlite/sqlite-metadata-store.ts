import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  BlobLinkMetadata,
  CacheRuleMetadata,
  ConnectionPoolStats,
  CreationTemplateMetadata,
  IdentityMetadata,
  LockMetadata,
  ManifestMetadata,
  MetadataStore,
  RepositoryMetadata,
  SecretMetadata,
  TagMetadata,
  UploadMetadata,
} from '../../metadata-store.ts';
import { ProcessLocks } from '../process-locks.ts';
import { migrate, type Db } from './database.ts';
import { SqliteBlobLinks } from './blob-links.ts';
import { SqliteCacheRules, SqliteTemplates } from './cache-rules.ts';
import { SqliteIdentities } from './identities.ts';
import { SqliteManifests } from './manifests.ts';
import { SqliteRepositories } from './repositories.ts';
import { SqliteSecrets } from './secrets.ts';
import { SqliteTags } from './tags.ts';
import { SqliteUploads } from './uploads.ts';

export class SqliteMetadataStore implements MetadataStore {
  readonly repositories: RepositoryMetadata;
  readonly manifests: ManifestMetadata;
  readonly tags: TagMetadata;
  readonly blobLinks: BlobLinkMetadata;
  readonly uploads: UploadMetadata;
  readonly secrets: SecretMetadata;
  readonly cacheRules: CacheRuleMetadata;
  readonly templates: CreationTemplateMetadata;
  readonly identities: IdentityMetadata;
  /** One process serves a SQLite store, so its locks need not leave the process. */
  readonly locks: LockMetadata = new ProcessLocks();

  private constructor(private readonly db: Db) {
    this.repositories = new SqliteRepositories(db);
    this.manifests = new SqliteManifests(db);
    this.tags = new SqliteTags(db);
    this.blobLinks = new SqliteBlobLinks(db);
    this.uploads = new SqliteUploads(db);
    this.secrets = new SqliteSecrets(db);
    this.cacheRules = new SqliteCacheRules(db);
    this.templates = new SqliteTemplates(db);
    this.identities = new SqliteIdentities(db);
  }

  /** Opens (creating if needed) and migrates the database at `path`, or an in-memory one for ':memory:'. */
  static open(path: string): SqliteMetadataStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a process crash at any instant; only an OS crash can lose the
    // latest commits, never consistency.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return new SqliteMetadataStore(db);
  }

  /** SQLite's data_version moves when another connection commits, never for this one's own writes. */
  watchExternalChanges(onChange: () => void, intervalMs = 250): () => void {
    const version = () => this.db.pragma('data_version', { simple: true }) as number;
    let seen = version();
    const timer = setInterval(() => {
      if (!this.db.open) return;
      const now = version();
      if (now === seen) return;
      seen = now;
      onChange();
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  connections(): ConnectionPoolStats[] {
    return [];
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
