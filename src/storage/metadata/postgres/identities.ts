import type { AccessKeyRecord, IdentityMetadata, UserRecord } from '../../metadata-store.ts';
import { withoutRowValues, type Db } from './database.ts';
import { dateOf, toUser, toKey, type UserRow, type KeyRow } from '../rows.ts';

export class PostgresIdentities implements IdentityMetadata {
  constructor(private readonly db: Db) {}

  async getUser(name: string): Promise<UserRecord | undefined> {
    const { rows } = await this.db.query<UserRow>('SELECT name, policy, created_at FROM users WHERE name = $1', [name]);
    const row = rows[0];
    return row && toUser(row);
  }

  async listUsers(): Promise<UserRecord[]> {
    const { rows } = await this.db.query<UserRow>('SELECT name, policy, created_at FROM users ORDER BY name');
    return rows.map(toUser);
  }

  async putUser(user: { name: string; policy: unknown[] }, at: Date): Promise<void> {
    await this.db.query(
      'INSERT INTO users (name, policy, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET policy = excluded.policy',
      [user.name, JSON.stringify(user.policy), at.getTime()],
    );
  }

  async deleteUser(name: string): Promise<boolean> {
    // Access keys and login tokens go with it (ON DELETE CASCADE).
    const result = await this.db.query('DELETE FROM users WHERE name = $1', [name]);
    return (result.rowCount ?? 0) > 0;
  }

  async getKey(id: string): Promise<AccessKeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>('SELECT id, user_name, secret, active, created_at FROM access_keys WHERE id = $1', [id]);
    const row = rows[0];
    return row && toKey(row);
  }

  async listKeys(userName: string): Promise<AccessKeyRecord[]> {
    // By id after the time: SQLite breaks ties by insertion order, which PostgreSQL does not keep.
    const { rows } = await this.db.query<KeyRow>(
      'SELECT id, user_name, secret, active, created_at FROM access_keys WHERE user_name = $1 ORDER BY created_at, id',
      [userName],
    );
    return rows.map(toKey);
  }

  async putKey(key: Omit<AccessKeyRecord, 'createdAt'>, at: Date): Promise<void> {
    await this.db
      .query(
        `INSERT INTO access_keys (id, user_name, secret, active, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET active = excluded.active`,
        [key.id, key.userName, key.sealedSecret, key.active, at.getTime()],
      )
      .catch(withoutRowValues);
  }

  async deleteKey(id: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM access_keys WHERE id = $1', [id]);
    return (result.rowCount ?? 0) > 0;
  }

  async putLoginToken(hash: string, userName: string, expiresAt: Date): Promise<void> {
    await this.db
      .query('INSERT INTO login_tokens (hash, user_name, expires_at) VALUES ($1, $2, $3)', [hash, userName, expiresAt.getTime()])
      .catch(withoutRowValues);
  }

  async getLoginToken(hash: string): Promise<{ userName: string; expiresAt: Date } | undefined> {
    const { rows } = await this.db.query<{ user_name: string; expires_at: string }>(
      'SELECT user_name, expires_at FROM login_tokens WHERE hash = $1',
      [hash],
    );
    const row = rows[0];
    return row && { userName: row.user_name, expiresAt: dateOf(row.expires_at) };
  }

  async deleteExpiredLoginTokens(before: Date): Promise<number> {
    const result = await this.db.query('DELETE FROM login_tokens WHERE expires_at < $1', [before.getTime()]);
    return result.rowCount ?? 0;
  }
}

