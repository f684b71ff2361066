import type {
  UploadMetadata,
  UploadSession,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';
import { toUpload, type UploadRow } from '../rows.ts';

export class PostgresUploads implements UploadMetadata {
  constructor(private readonly db: Db) {}

  async create(session: UploadSession): Promise<void> {
    await this.db.query('INSERT INTO uploads (id, repository, started_at, updated_at) VALUES ($1, $2, $3, $4)', [
      session.id,
      session.repository,
      session.startedAt.getTime(),
      session.updatedAt.getTime(),
    ]);
  }

  async get(id: string): Promise<UploadSession | undefined> {
    const { rows } = await this.db.query<UploadRow>('SELECT * FROM uploads WHERE id = $1', [id]);
    const row = rows[0];
    return row && toUpload(row);
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.db.query('UPDATE uploads SET updated_at = $1 WHERE id = $2', [at.getTime(), id]);
  }

  async delete(id: string): Promise<void> {
    await this.db.query('DELETE FROM uploads WHERE id = $1', [id]);
  }

  async listStale(before: Date): Promise<UploadSession[]> {
    const { rows } = await this.db.query<UploadRow>('SELECT * FROM uploads WHERE updated_at < $1', [before.getTime()]);
    return rows.map(toUpload);
  }
}

