import type {
  PageRequest,
  RepositoryMetadata,
  RepositoryRecord,
  RepositorySettings,
} from '../../metadata-store.ts';
import { pageOf, type Db } from './database.ts';
import { dateOf } from '../rows.ts';

export class PostgresRepositories implements RepositoryMetadata {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<RepositoryRecord | undefined> {
    const { rows } = await this.db.query<{ name: string; created_at: string; cache_rule: string | null; settings: string | null }>(
      'SELECT name, created_at, cache_rule, settings FROM repositories WHERE name = $1',
      [name],
    );
    const row = rows[0];
    return (
      row && {
        name: row.name,
        createdAt: dateOf(row.created_at),
        ...(row.cache_rule !== null && { cacheRule: row.cache_rule }),
        ...(row.settings !== null && { settings: JSON.parse(row.settings) as RepositorySettings }),
      }
    );
  }

  async updateSettings(name: string, settings: RepositorySettings): Promise<boolean> {
    const result = await this.db.query('UPDATE repositories SET settings = $1 WHERE name = $2', [JSON.stringify(settings), name]);
    return (result.rowCount ?? 0) > 0;
  }

  async delete(name: string): Promise<boolean> {
    // Manifests, references, tags and blob links go with it (ON DELETE CASCADE).
    const result = await this.db.query('DELETE FROM repositories WHERE name = $1', [name]);
    return (result.rowCount ?? 0) > 0;
  }

  async create(name: string, options: { cacheRule?: string; settings?: RepositorySettings }, at: Date): Promise<boolean> {
    // Of concurrent callers, the one whose row lands wins; the others wait for it and then insert nothing.
    const result = await this.db.query(
      'INSERT INTO repositories (name, created_at, cache_rule, settings) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING',
      [name, at.getTime(), options.cacheRule ?? null, options.settings ? JSON.stringify(options.settings) : null],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async list(page: PageRequest): Promise<string[]> {
    return pageOf(this.db, 'SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2', [], page);
  }
}
