import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL the end-to-end tests use; every test works in a schema of its own. */
export const POSTGRES_URL = process.env['CISTERN_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export function freshSchema(): string {
  return `cistern_e2e_${randomBytes(6).toString('hex')}`;
}

/** Fails, saying how to fix it, when PostgreSQL is not there. */
export async function requirePostgres(): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_URL} (${(err as Error).message}); start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
