import { randomBytes } from 'node:crypto';
import pg from 'pg';
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
import { changeChannel, connectionConfig, Db, describeUrl, migrate, validSchema } from './database.ts';
import { PostgresBlobLinks } from './blob-links.ts';
import { PostgresCacheRules, PostgresTemplates } from './cache-rules.ts';
import { ChangeListener } from './changes.ts';
import { PostgresIdentities } from './identities.ts';
import { PostgresLocks } from './locks.ts';
import { PostgresManifests } from './manifests.ts';
import { PostgresRepositories } from './repositories.ts';
import { PostgresSecrets } from './secrets.ts';
import { PostgresTags } from './tags.ts';
import { PostgresUploads } from './uploads.ts';

export interface PostgresMetadataStoreOptions {
  /** postgres://user:password@host:port/database?sslmode=... */
  url: string;
  /** Where every table lives; created if missing. Default `public`. */
  schema?: string;
  /** Connections this instance may hold open at once. Default 10. */
  poolSize?: number;
}

const LOCK_CONNECTION_WAIT_MS = 2000;
const RECENT_SUCCESS_MS = 5000;

/** What watchExternalChanges returns here: the stop function, plus when the watch is in place. */
export type StopWatching = (() => void) & { ready: Promise<void> };

/**
 * The scale-out metadata store: one PostgreSQL schema shared by any number of Cistern instances.
 * Each instance has a random id, which it sets as the application_name of all of its connections;
 * the change triggers report it, and that is how an instance tells its own commits from others'.
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly repositories: RepositoryMetadata;
  readonly manifests: ManifestMetadata;
  readonly tags: TagMetadata;
  readonly blobLinks: BlobLinkMetadata;
  readonly uploads: UploadMetadata;
  readonly secrets: SecretMetadata;
  readonly cacheRules: CacheRuleMetadata;
  readonly templates: CreationTemplateMetadata;
  readonly identities: IdentityMetadata;
  readonly locks: LockMetadata;
  private readonly listeners = new Set<ChangeListener>();
  /** Listeners told to stop whose connection may still be closing: close() waits for them too. */
  private readonly stopping = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly db: Db,
    private readonly lockPool: Db,
    private readonly config: pg.ClientConfig,
    private readonly schema: string,
    private readonly instanceId: string,
  ) {
    this.repositories = new PostgresRepositories(db);
    this.manifests = new PostgresManifests(db);
    this.tags = new PostgresTags(db);
    this.blobLinks = new PostgresBlobLinks(db);
    this.uploads = new PostgresUploads(db);
    this.secrets = new PostgresSecrets(db);
    this.cacheRules = new PostgresCacheRules(db);
    this.templates = new PostgresTemplates(db);
    this.identities = new PostgresIdentities(db);
    this.locks = new PostgresLocks(lockPool, schema);
  }

  /** Connects, creating the schema if needed and migrating it. */
  static async open(options: PostgresMetadataStoreOptions): Promise<PostgresMetadataStore> {
    const schema = validSchema(options.schema ?? 'public');
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new Error(`poolSize must be a positive integer, not ${poolSize}`);
    const instanceId = `cistern-${randomBytes(8).toString('hex')}`;
    const config = connectionConfig(options.url, schema, instanceId);
    const pool = new Db(new pg.Pool({ ...config, max: poolSize }));
    // An idle connection that breaks (database restart) is dropped by the pool; without a listener the
    // 'error' event would crash the process.
    pool.pool.on('error', () => undefined);
    try {
      await migrate(pool, schema);
    } catch (err) {
      await pool.end().catch(() => undefined);
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(`opening the PostgreSQL metadata store at ${describeUrl(options.url)} (schema ${schema}) failed: ${reason}`, { cause: err });
    }
    // A lock is an optimisation: when every lock connection is busy, waiting briefly and then working
    // without one beats queueing behind slow upstreams (see PostgresLocks).
    const lockPool = new Db(new pg.Pool({ ...config, max: poolSize, connectionTimeoutMillis: LOCK_CONNECTION_WAIT_MS }));
    lockPool.pool.on('error', () => undefined);
    return new PostgresMetadataStore(pool, lockPool, config, schema, instanceId);
  }

  /** LISTEN/NOTIFY: the triggers notify on commit, and notifications carrying this instance's id are skipped. */
  watchExternalChanges(onChange: (repositories?: string[]) => void): StopWatching {
    if (this.closing) return Object.assign(() => undefined, { ready: Promise.resolve() });
    const listener = new ChangeListener(this.config, changeChannel(this.schema), this.instanceId, onChange);
    this.listeners.add(listener);
    const stop = () => {
      if (!this.listeners.delete(listener)) return;
      const stopped = listener.stop().finally(() => this.stopping.delete(stopped));
      this.stopping.add(stopped);
    };
    return Object.assign(stop, { ready: listener.ready });
  }

  connections(): ConnectionPoolStats[] {
    const stats = (pool: string, db: Db): ConnectionPoolStats => ({
      pool,
      total: db.pool.totalCount,
      idle: db.pool.idleCount,
      waiting: db.pool.waitingCount,
    });
    return [stats('queries', this.db), stats('locks', this.lockPool)];
  }

  /**
   * A query that succeeded a moment ago answers for the database: under load every connection may be busy,
   * and a readiness check that queued behind them would take a busy instance out of service.
   */
  async ping(): Promise<void> {
    if (Date.now() - this.db.lastSuccess < RECENT_SUCCESS_MS) return;
    await this.db.query('SELECT 1');
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...[...this.listeners].map((listener) => listener.stop()), ...this.stopping]);
      this.listeners.clear();
      await Promise.all([this.db.end(), this.lockPool.end()]);
    })();
    return this.closing;
  }
}
