import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startApp, type App } from '../../src/app.ts';
import { parseConfig, type Config } from '../../src/config/load.ts';
import type { MetadataStore } from '../../src/storage/metadata-store.ts';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite/sqlite-metadata-store.ts';

export interface TestCistern {
  app: App;
  config: Config;
  url: string;
  /** host:port, as registry clients name it. */
  host: string;
  directory: string;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * With CISTERN_TEST_METADATA_URL=postgres://…, every Cistern a test starts without saying otherwise keeps its
 * metadata in PostgreSQL, in a schema named after its directory (so a restart on the same directory finds its
 * data): run the suite that way to check the PostgreSQL driver under the whole registry
 * (`CISTERN_TEST_METADATA_URL=postgres://postgres@127.0.0.1:5432/test node scripts/run-tests.mjs test/integration`).
 * Schemas of temporary directories are dropped on stop; those of directories a test chose are not.
 */
const METADATA_URL = process.env['CISTERN_TEST_METADATA_URL'];

function withTestMetadata(overrides: Record<string, unknown>, dir: string): Record<string, unknown> {
  const storage = (overrides['storage'] ?? {}) as Record<string, unknown>;
  if (!METADATA_URL || storage['metadata'] !== undefined) return overrides;
  const schema = `cistern_t_${createHash('sha256').update(dir).digest('hex').slice(0, 16)}`;
  return { ...overrides, storage: { directory: dir, ...storage, metadata: { driver: 'postgres', url: METADATA_URL, schema } } };
}

async function dropTestSchema(config: Config): Promise<void> {
  const settings = config.storage.metadata;
  if (settings.driver !== 'postgres' || !settings.schema.startsWith('cistern_t_')) return;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: settings.url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${settings.schema}" CASCADE`).finally(() => client.end());
}

/** Cistern in this process on an ephemeral loopback port, with its own temporary storage. */
export async function startCistern(overrides: Record<string, unknown> = {}, directory?: string, now?: () => Date): Promise<TestCistern> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), 'cistern-test-')));
  overrides = withTestMetadata(overrides, dir);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseConfig({
    http: { host: '127.0.0.1', port: 0, shutdownGrace: '5s' },
    storage: { directory: dir },
    log: { level: 'info' },
    // The registry's own behaviour is tested open; auth has its own tests, which pass `auth`.
    auth: { enabled: false },
    ...overrides,
  });
  const app = await startApp(config, { log: pino({ level: 'info', base: undefined }, sink), ...(now && { now }) });
  return {
    app,
    config,
    url: app.url,
    host: new URL(app.url).host,
    directory: dir,
    logs,
    async stop() {
      await app.close();
      if (!directory) {
        await rm(dir, { recursive: true, force: true });
        await dropTestSchema(config);
      }
    },
  };
}

/**
 * A second connection to a test Cistern's metadata (its SQLite file or its PostgreSQL schema), as the
 * CLI or another instance would have: to look at what was stored, or to change it behind the server's back.
 */
export async function openMetadata(cistern: TestCistern): Promise<MetadataStore> {
  const settings = cistern.config.storage.metadata;
  if (settings.driver === 'sqlite') return SqliteMetadataStore.open(join(cistern.directory, 'metadata.db'));
  const { PostgresMetadataStore } = await import('../../src/storage/metadata/postgres/postgres-metadata-store.ts');
  return PostgresMetadataStore.open({ url: settings.url, schema: settings.schema });
}

/** Every byte the metadata store holds for this Cistern, as text (latin1), to search for what must not be there. */
export async function dumpMetadata(cistern: TestCistern): Promise<string> {
  const settings = cistern.config.storage.metadata;
  if (settings.driver === 'sqlite') {
    // The write-ahead log holds the latest commits until a checkpoint moves them into the file.
    const files = ['metadata.db', 'metadata.db-wal'].map((name) => readFile(join(cistern.directory, name)).catch(() => Buffer.alloc(0)));
    return (await Promise.all(files)).map((bytes) => bytes.toString('latin1')).join('\n');
  }
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: settings.url });
  await client.connect();
  try {
    const tables = await client.query<{ name: string }>('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1', [settings.schema]);
    const parts: string[] = [];
    for (const { name } of tables.rows) {
      const rows = await client.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${settings.schema}"."${name}" t`);
      // BYTEA arrives hex-encoded ("\\x…"): decode it, so sealed values are searched as the bytes they are.
      for (const { row } of rows.rows) parts.push(row.replace(/\\\\x([0-9a-f]+)/g, (_m, hex: string) => Buffer.from(hex, 'hex').toString('latin1')));
    }
    return parts.join('\n');
  } finally {
    await client.end();
  }
}
