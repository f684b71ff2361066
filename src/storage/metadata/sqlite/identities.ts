import type { Db } from './database.ts';
import type { AccessKeyRecord, IdentityMetadata, UserRecord } from '../../metadata-store.ts';
import { toUser, toKey, type UserRow, type KeyRow } from '../rows.ts';

export class SqliteIdentities implements IdentityMetadata {
  constructor(private readonly db: Db) {}

  async getUser(name: string): Promise<UserRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return row && toUser(row);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(toUser);
  }

  async putUser(user: { name: string; policy: unknown[] }, at: Date): Promise<void> {
    this.db
      .prepare('INSERT INTO users (name, policy, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET policy = excluded.policy')
      .run(user.name, JSON.stringify(user.policy), at.getTime());
  }

  async deleteUser(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM users WHERE name = ?').run(name).changes > 0;
  }

  async getKey(id: string): Promise<AccessKeyRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM access_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return row && toKey(row);
  }

  async listKeys(userName: string): Promise<AccessKeyRecord[]> {
    return (this.db.prepare('SELECT * FROM access_keys WHERE user_name = ? ORDER BY created_at').all(userName) as KeyRow[]).map(toKey);
  }

  async putKey(key: Omit<AccessKeyRecord, 'createdAt'>, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO access_keys (id, user_name, secret, active, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET active = excluded.active`,
      )
      .run(key.id, key.userName, key.sealedSecret, key.active ? 1 : 0, at.getTime());
  }

  async deleteKey(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM access_keys WHERE id = ?').run(id).changes > 0;
  }

  async putLoginToken(hash: string, userName: string, expiresAt: Date): Promise<void> {
    this.db.prepare('INSERT INTO login_tokens (hash, user_name, expires_at) VALUES (?, ?, ?)').run(hash, userName, expiresAt.getTime());
  }

  async getLoginToken(hash: string): Promise<{ userName: string; expiresAt: Date } | undefined> {
    const row = this.db.prepare('SELECT user_name, expires_at FROM login_tokens WHERE hash = ?').get(hash) as
      | { user_name: string; expires_at: number }
      | undefined;
    return row && { userName: row.user_name, expiresAt: new Date(row.expires_at) };
  }

  async deleteExpiredLoginTokens(before: Date): Promise<number> {
    return this.db.prepare('DELETE FROM login_tokens WHERE expires_at < ?').run(before.getTime()).changes;
  }
}

