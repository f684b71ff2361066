import type { Digest } from '../../../domain/digest.ts';
import type {
  PageRequest,
  TagMetadata,
  TagState,
} from '../../metadata-store.ts';
import { pageOf, type Db } from './database.ts';
import { dateOf } from '../rows.ts';

export class PostgresTags implements TagMetadata {
  constructor(private readonly db: Db) {}

  async resolve(repository: string, tag: string): Promise<Digest | undefined> {
    const { rows } = await this.db.query<{ digest: Digest }>(
      'SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2',
      [repository, tag],
    );
    return rows[0]?.digest;
  }

  async state(repository: string, tag: string): Promise<TagState | undefined> {
    const { rows } = await this.db.query<{ digest: string; checked_at: string }>(
      `SELECT t.digest, COALESCE(t.checked_at, t.updated_at) AS checked_at
         FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2`,
      [repository, tag],
    );
    const row = rows[0];
    return row && { digest: row.digest as Digest, checkedAt: dateOf(row.checked_at) };
  }

  async markChecked(repository: string, tag: string, at: Date): Promise<void> {
    // Touches checked_at only, which the change triggers ignore: a check is not news to other instances.
    await this.db.query(
      'UPDATE tags SET checked_at = $1 WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $3)',
      [at.getTime(), tag, repository],
    );
  }

  async list(repository: string, page: PageRequest): Promise<string[]> {
    return pageOf(
      this.db,
      `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
        WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3`,
      [repository],
      page,
    );
  }

  async delete(repository: string, tag: string): Promise<boolean> {
    const result = await this.db.query(
      'DELETE FROM tags WHERE name = $1 AND repository_id = (SELECT id FROM repositories WHERE name = $2)',
      [tag, repository],
    );
    return (result.rowCount ?? 0) > 0;
  }
}
