import type {
  SecretMetadata,
  SecretRecord,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';
import { toSecret, type SecretRow } from '../rows.ts';

export class SqliteSecrets implements SecretMetadata {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<SecretRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM secrets WHERE name = ? AND deleted_at IS NULL').get(name) as SecretRow | undefined;
    return row && toSecret(row);
  }

  async find(name: string): Promise<SecretRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as SecretRow | undefined;
    return row && toSecret(row);
  }

  async put(secret: { name: string; ciphertext: Buffer; description?: string }, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO secrets (name, ciphertext, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, description = excluded.description,
           updated_at = excluded.updated_at, deleted_at = NULL`,
      )
      .run(secret.name, secret.ciphertext, secret.description ?? null, at.getTime(), at.getTime());
  }

  async list(options: { includeScheduled?: boolean } = {}): Promise<SecretRecord[]> {
    const sql = options.includeScheduled ? 'SELECT * FROM secrets ORDER BY name' : 'SELECT * FROM secrets WHERE deleted_at IS NULL ORDER BY name';
    return (this.db.prepare(sql).all() as SecretRow[]).map(toSecret);
  }

  async scheduleDeletion(name: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE secrets SET deleted_at = ? WHERE name = ?').run(at.getTime(), name);
  }

  async purgeDeleted(now: Date): Promise<number> {
    return this.db.prepare('DELETE FROM secrets WHERE deleted_at IS NOT NULL AND deleted_at <= ?').run(now.getTime()).changes;
  }

  async delete(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes > 0;
  }
}

