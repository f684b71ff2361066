import { createHash } from 'node:crypto';
import pg from 'pg';
import { RegistryError } from '../../../domain/errors.ts';
import type { PageRequest } from '../../metadata-store.ts';
import { MIGRATIONS } from './migrations.ts';

/** What the PostgreSQL driver's role modules share: the pool, migrations, and query helpers. */

/**
 * The pool, with one difference: losing the database (refused, dropped or timed-out connections, a server
 * shutting down) is reported as the registry's UNAVAILABLE (503, worth retrying), not as an internal error.
 */
export class Db implements Queryable {
  /** When a query last succeeded (Date.now()), so that a readiness check need not queue behind a busy pool. */
  lastSuccess = 0;

  constructor(readonly pool: pg.Pool) {}

  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      const result = await this.pool.query<R>(text, values);
      this.lastSuccess = Date.now();
      return result;
    } catch (err) {
      const mapped = unavailableIfLost(err);
      if (mapped !== err) this.lastSuccess = 0;
      throw mapped;
    }
  }

  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw unavailableIfLost(err);
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

const LOST_CONNECTION = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** A lost database as UNAVAILABLE; any other error unchanged. The original is kept as the cause, for the log. */
export function unavailableIfLost(err: unknown): unknown {
  if (err instanceof RegistryError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : '';
  const lost =
    (typeof code === 'string' && (LOST_CONNECTION.has(code) || code.startsWith('08') || /^57P0[1-3]$/.test(code) || code === '53300')) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
  if (!lost) return err;
  const unavailable = new RegistryError('UNAVAILABLE', 'the metadata store is unavailable; try again');
  (unavailable as { cause?: unknown }).cause = err;
  return unavailable;
}

/** A pool or a client checked out of it for a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Only a plain identifier: it is spliced into DDL and the connection's options, never bound. */
export function validSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema) || schema.startsWith('pg_') || schema === 'information_schema') {
    throw new Error(
      `PostgreSQL schema name ${JSON.stringify(schema)} is not usable: it must match ${SCHEMA_NAME.source} and not be a system schema`,
    );
  }
  return schema;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The LISTEN/NOTIFY channel of a schema, as the triggers of migration 4 compute it (63 bytes at most). */
export function changeChannel(schema: string): string {
  return `cistern_changes_${schema}`.slice(0, 63);
}

/** The URL without its password, for messages. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/**
 * Connection settings for every connection of one store instance. pg lets parameters in the URL override
 * those given beside it, so the two this driver depends on are taken out of the URL: `application_name`
 * (the instance id, which tells a store its own change notifications apart) and the search_path part of
 * `options` (appended after the user's own options, so it wins).
 */
export function connectionConfig(url: string, schema: string, instanceId: string): pg.ClientConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not the URL itself (nor the TypeError, which carries it): it may hold a password.
    throw new Error('the PostgreSQL metadata store URL is not a valid URL');
  }
  const userOptions = parsed.searchParams.get('options') ?? process.env.PGOPTIONS;
  parsed.searchParams.delete('options');
  parsed.searchParams.delete('application_name');
  return {
    connectionString: parsed.toString(),
    application_name: instanceId,
    options: [userOptions, `-c search_path=${quoteIdentifier(schema)}`].filter(Boolean).join(' '),
    keepAlive: true,
    // Otherwise a request waits forever on a database that does not answer.
    connectionTimeoutMillis: 30_000,
  };
}

// The first half of the advisory lock key: Cistern's ('CIST'); the second half is the schema's.
const LOCK_CLASS = 0x43495354;

function schemaLockKey(schema: string): number {
  return createHash('sha256').update(`cistern:${schema}`).digest().readInt32BE(0);
}

/**
 * Creates the schema if needed and brings it up to date, one transaction per migration. Instances
 * starting together queue on a session advisory lock keyed by the schema, so exactly one of them migrates.
 */
export async function migrate(pool: Db, schema: string): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, schemaLockKey(schema)]);
    try {
      // Checked first, so that a role without CREATE on the database can use a schema made for it.
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${quoteIdentifier(schema)}`);
      await client.query('CREATE TABLE IF NOT EXISTS cistern_schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT COALESCE(MAX(version), 0)::integer AS version FROM cistern_schema_version');
      const current = rows[0]?.version ?? 0;
      if (current > MIGRATIONS.length) {
        throw new Error(`metadata schema ${schema} is at version ${current}, newer than this Cistern (${MIGRATIONS.length})`);
      }
      for (let version = current; version < MIGRATIONS.length; version++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[version]!);
          await client.query('INSERT INTO cistern_schema_version (version, applied_at) VALUES ($1, $2)', [version + 1, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, schemaLockKey(schema)]).catch((err: Error) => {
        broken = err;
      });
    }
  } finally {
    // A connection that may still hold the lock must not go back to the pool.
    client.release(broken);
  }
}

// Serialization failures and deadlocks: PostgreSQL rolled the transaction back and it may simply run again.
const RETRYABLE = new Set(['40001', '40P01']);

/** Runs `work` in one transaction on one pooled client, retrying it when PostgreSQL asks to. */
export async function transaction<T>(pool: Db, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken: Error | undefined;
    // A connection lost between two statements (no query in flight) must not crash the process.
    const lost = (err: Error) => {
      broken = err;
    };
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      if (attempt < 3 && err instanceof pg.DatabaseError && err.code !== undefined && RETRYABLE.has(err.code)) continue;
      throw unavailableIfLost(err);
    } finally {
      client.off('error', lost);
      // A client whose rollback failed is in an unknown state: the pool discards it.
      client.release(broken);
    }
  }
}

/**
 * The repository's id, creating it if it is new, and holds it (FOR KEY SHARE) until the transaction ends
 * so that a concurrent repository delete cannot cascade away what the caller is about to add. The
 * insert does nothing to an existing row, so linking a blob writes no repository row (and notifies no one).
 */
export async function ensureRepository(client: pg.PoolClient, name: string, at: number): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const inserted = await client.query<{ id: string }>(
      'INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id',
      [name, at],
    );
    const row =
      inserted.rows[0] ?? (await client.query<{ id: string }>('SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE', [name])).rows[0];
    if (row) return row.id;
    // Deleted by someone else between the two statements: create it again.
  }
  throw new Error('repository is being created and deleted concurrently; giving up');
}

export async function pageOf(db: Queryable, sql: string, args: unknown[], page: PageRequest): Promise<string[]> {
  // SQLite reads a negative LIMIT as no limit; PostgreSQL refuses one, and reads NULL so.
  const limit = page.limit < 0 ? null : page.limit;
  const { rows } = await db.query<{ name: string }>(sql, [...args, page.last ?? '', limit]);
  return rows.map((row) => row.name);
}

/** A SUM: approximate beyond 2^53 (9 PB) rather than an error in a metric or a listing. */
export function sumToNumber(value: string | number): number {
  return Number(value);
}

/**
 * For tables of sealed values: PostgreSQL puts the failing row in an error's detail (a NOT NULL
 * violation shows every column), and an error may end up in a log.
 */
export function withoutRowValues(err: unknown): never {
  if (err instanceof pg.DatabaseError) {
    err.detail = undefined;
    err.where = undefined;
    err.internalQuery = undefined;
  }
  throw err;
}
