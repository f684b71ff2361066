import type { Digest } from '../../../domain/digest.ts';
import type {
  BlobLinkMetadata,
} from '../../metadata-store.ts';
import { ensureRepository, type Db } from './database.ts';

export class SqliteBlobLinks implements BlobLinkMetadata {
  private readonly getStatement;
  constructor(private readonly db: Db) {
    this.getStatement = db
      .prepare(
        'SELECT b.size FROM blob_links b JOIN repositories r ON r.id = b.repository_id WHERE r.name = ? AND b.digest = ?',
      )
      .pluck();
  }

  async get(repository: string, digest: Digest): Promise<number | undefined> {
    return this.getStatement.get(repository, digest) as number | undefined;
  }

  async link(repository: string, digest: Digest, size: number, at: Date): Promise<void> {
    this.db.transaction(() => {
      const repositoryId = ensureRepository(this.db, repository, at.getTime());
      this.db
        .prepare('INSERT OR IGNORE INTO blob_links (repository_id, digest, size, linked_at) VALUES (?, ?, ?, ?)')
        .run(repositoryId, digest, size, at.getTime());
    })();
  }

  async unlink(repository: string, digest: Digest): Promise<boolean> {
    const result = this.db
      .prepare('DELETE FROM blob_links WHERE digest = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)')
      .run(digest, repository);
    return result.changes > 0;
  }

  async unreferenced(before: Date): Promise<{ repository: string; digest: Digest }[]> {
    return this.db
      .prepare(
        // Starts from the link's own repository's manifests, so a layer shared by thousands of
        // repositories costs one index probe per manifest here, not a walk over all its references.
        `SELECT r.name AS repository, b.digest FROM blob_links b JOIN repositories r ON r.id = b.repository_id
          WHERE b.linked_at < ? AND NOT EXISTS (
            SELECT 1 FROM manifests m JOIN manifest_references mr ON mr.manifest_id = m.id AND mr.kind = 'blob' AND mr.digest = b.digest
             WHERE m.repository_id = b.repository_id)`,
      )
      .all(before.getTime()) as { repository: string; digest: Digest }[];
  }

  async liveDigests(linkedSince: Date): Promise<Set<string>> {
    const live = new Set<string>();
    for (const digest of this.db.prepare('SELECT DISTINCT digest FROM blob_links WHERE linked_at >= ?').pluck().iterate(linkedSince.getTime())) live.add(digest as string);
    for (const digest of this.db.prepare("SELECT DISTINCT digest FROM manifest_references WHERE kind = 'blob'").pluck().iterate()) live.add(digest as string);
    return live;
  }

  async storedBytes(cacheRule?: string): Promise<number> {
    const sql =
      cacheRule === undefined
        ? 'SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT digest, size FROM blob_links)'
        : `SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT b.digest, b.size FROM blob_links b
             JOIN repositories r ON r.id = b.repository_id WHERE r.cache_rule = ?)`;
    const statement = this.db.prepare(sql).pluck();
    return (cacheRule === undefined ? statement.get() : statement.get(cacheRule)) as number;
  }

  async isLive(digest: Digest): Promise<boolean> {
    return (
      this.db.prepare('SELECT 1 FROM blob_links WHERE digest = ? LIMIT 1').get(digest) !== undefined ||
      this.db.prepare("SELECT 1 FROM manifest_references WHERE digest = ? AND kind = 'blob' LIMIT 1").get(digest) !== undefined
    );
  }
}
