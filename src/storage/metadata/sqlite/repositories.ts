import type {
  PageRequest,
  RepositoryMetadata,
  RepositoryRecord,
  RepositorySettings,
} from '../../metadata-store.ts';
import { pageOf, type Db } from './database.ts';

export class SqliteRepositories implements RepositoryMetadata {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<RepositoryRecord | undefined> {
    const row = this.db.prepare('SELECT name, created_at, cache_rule, settings FROM repositories WHERE name = ?').get(name) as
      | { name: string; created_at: number; cache_rule: string | null; settings: string | null }
      | undefined;
    return (
      row && {
        name: row.name,
        createdAt: new Date(row.created_at),
        ...(row.cache_rule !== null && { cacheRule: row.cache_rule }),
        ...(row.settings !== null && { settings: JSON.parse(row.settings) as RepositorySettings }),
      }
    );
  }

  async updateSettings(name: string, settings: RepositorySettings): Promise<boolean> {
    return this.db.prepare('UPDATE repositories SET settings = ? WHERE name = ?').run(JSON.stringify(settings), name).changes > 0;
  }

  async delete(name: string): Promise<boolean> {
    // Manifests, references, tags and blob links go with it (ON DELETE CASCADE).
    return this.db.prepare('DELETE FROM repositories WHERE name = ?').run(name).changes > 0;
  }

  async create(name: string, options: { cacheRule?: string; settings?: RepositorySettings }, at: Date): Promise<boolean> {
    const result = this.db
      .prepare('INSERT INTO repositories (name, created_at, cache_rule, settings) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING')
      .run(name, at.getTime(), options.cacheRule ?? null, options.settings ? JSON.stringify(options.settings) : null);
    return result.changes > 0;
  }

  async list(page: PageRequest): Promise<string[]> {
    return pageOf(this.db, 'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?', [], page);
  }
}
