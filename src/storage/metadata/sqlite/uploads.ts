import type {
  UploadMetadata,
  UploadSession,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';
import { toUpload, type UploadRow } from '../rows.ts';

export class SqliteUploads implements UploadMetadata {
  constructor(private readonly db: Db) {}

  async create(session: UploadSession): Promise<void> {
    this.db
      .prepare('INSERT INTO uploads (id, repository, started_at, updated_at) VALUES (?, ?, ?, ?)')
      .run(session.id, session.repository, session.startedAt.getTime(), session.updatedAt.getTime());
  }

  async get(id: string): Promise<UploadSession | undefined> {
    const row = this.db.prepare('SELECT * FROM uploads WHERE id = ?').get(id) as UploadRow | undefined;
    return row && toUpload(row);
  }

  async touch(id: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE uploads SET updated_at = ? WHERE id = ?').run(at.getTime(), id);
  }

  async delete(id: string): Promise<void> {
    this.db.prepare('DELETE FROM uploads WHERE id = ?').run(id);
  }

  async listStale(before: Date): Promise<UploadSession[]> {
    const rows = this.db.prepare('SELECT * FROM uploads WHERE updated_at < ?').all(before.getTime()) as UploadRow[];
    return rows.map(toUpload);
  }
}

