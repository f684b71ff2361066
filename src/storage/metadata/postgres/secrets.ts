import type {
  SecretMetadata,
  SecretRecord,
} from '../../metadata-store.ts';
import { withoutRowValues, type Db } from './database.ts';
import { toSecret, type SecretRow } from '../rows.ts';

export class PostgresSecrets implements SecretMetadata {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<SecretRecord | undefined> {
    const { rows } = await this.db.query<SecretRow>('SELECT * FROM secrets WHERE name = $1 AND deleted_at IS NULL', [name]);
    const row = rows[0];
    return row && toSecret(row);
  }

  async find(name: string): Promise<SecretRecord | undefined> {
    const { rows } = await this.db.query<SecretRow>('SELECT * FROM secrets WHERE name = $1', [name]);
    const row = rows[0];
    return row && toSecret(row);
  }

  async put(secret: { name: string; ciphertext: Buffer; description?: string }, at: Date): Promise<void> {
    await this.db
      .query(
        `INSERT INTO secrets (name, ciphertext, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, description = excluded.description,
           updated_at = excluded.updated_at, deleted_at = NULL`,
        [secret.name, secret.ciphertext, secret.description ?? null, at.getTime()],
      )
      .catch(withoutRowValues);
  }

  async list(options: { includeScheduled?: boolean } = {}): Promise<SecretRecord[]> {
    const sql = options.includeScheduled ? 'SELECT * FROM secrets ORDER BY name' : 'SELECT * FROM secrets WHERE deleted_at IS NULL ORDER BY name';
    const { rows } = await this.db.query<SecretRow>(sql);
    return rows.map(toSecret);
  }

  async scheduleDeletion(name: string, at: Date): Promise<void> {
    await this.db.query('UPDATE secrets SET deleted_at = $1 WHERE name = $2', [at.getTime(), name]).catch(withoutRowValues);
  }

  async purgeDeleted(now: Date): Promise<number> {
    const result = await this.db.query('DELETE FROM secrets WHERE deleted_at IS NOT NULL AND deleted_at <= $1', [now.getTime()]);
    return result.rowCount ?? 0;
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM secrets WHERE name = $1', [name]);
    return (result.rowCount ?? 0) > 0;
  }
}

