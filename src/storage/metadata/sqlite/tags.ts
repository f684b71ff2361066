import type { Digest } from '../../../domain/digest.ts';
import type {
  PageRequest,
  TagMetadata,
  TagState,
} from '../../metadata-store.ts';
import { pageOf, type Db } from './database.ts';

export class SqliteTags implements TagMetadata {
  private readonly resolveStatement;
  constructor(private readonly db: Db) {
    this.resolveStatement = db
      .prepare('SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.name = ?')
      .pluck();
  }

  async resolve(repository: string, tag: string): Promise<Digest | undefined> {
    return this.resolveStatement.get(repository, tag) as Digest | undefined;
  }

  async state(repository: string, tag: string): Promise<TagState | undefined> {
    const row = this.db
      .prepare(
        `SELECT t.digest, COALESCE(t.checked_at, t.updated_at) AS checked_at
           FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.name = ?`,
      )
      .get(repository, tag) as { digest: string; checked_at: number } | undefined;
    return row && { digest: row.digest as Digest, checkedAt: new Date(row.checked_at) };
  }

  async markChecked(repository: string, tag: string, at: Date): Promise<void> {
    this.db
      .prepare('UPDATE tags SET checked_at = ? WHERE name = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)')
      .run(at.getTime(), tag, repository);
  }

  async list(repository: string, page: PageRequest): Promise<string[]> {
    return pageOf(
      this.db,
      `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
        WHERE r.name = ? AND t.name > ? ORDER BY t.name LIMIT ?`,
      [repository],
      page,
    );
  }

  async delete(repository: string, tag: string): Promise<boolean> {
    const result = this.db
      .prepare('DELETE FROM tags WHERE name = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)')
      .run(tag, repository);
    return result.changes > 0;
  }
}
