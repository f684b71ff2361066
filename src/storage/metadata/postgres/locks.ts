import { createHash } from 'node:crypto';
import type { LockMetadata } from '../../metadata-store.ts';
import { unavailableIfLost, type Db } from './database.ts';

/**
 * Named locks as PostgreSQL session advisory locks, so they hold across every instance on the schema and
 * vanish with the session of an instance that dies. They are taken on a pool of their own: work done
 * under a lock queries the main pool, and sharing one pool could leave every connection waiting on a lock
 * whose holder waits for a connection.
 */
export class PostgresLocks implements LockMetadata {
  constructor(
    private readonly pool: Db,
    private readonly schema: string,
  ) {}

  async with<T>(name: string, work: () => Promise<T>): Promise<T> {
    const key = lockKey(this.schema, name);
    let client;
    try {
      client = await this.pool.connect();
    } catch {
      // Every lock connection is taken (or the database is away, which `work` will find out too): the lock
      // only saves duplicate work, so do the work without it rather than fail or wait on.
      return work();
    }
    let broken: Error | undefined;
    // The connection may die while work runs and no query is in flight: that must not crash the process
    // (the lock went with the session; the unlock below then fails and the client is discarded).
    const lost = (err: Error) => {
      broken = err;
    };
    client.on('error', lost);
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', key).catch((err: unknown) => {
        throw unavailableIfLost(err);
      });
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', key).catch((err: Error) => {
          broken = err;
        });
      }
    } finally {
      client.off('error', lost);
      // A connection that may still hold the lock must not go back to the pool.
      client.release(broken);
    }
  }
}

/** Two int4 keys from the schema and the name (the migration lock uses another first key). */
function lockKey(schema: string, name: string): [number, number] {
  const hash = createHash('sha256').update(`cistern:${schema}:lock:${name}`).digest();
  return [hash.readInt32BE(0), hash.readInt32BE(4)];
}
