import type { Digest } from '../../../domain/digest.ts';
import type {
  BlobLinkMetadata,
} from '../../metadata-store.ts';
import { ensureRepository, sumToNumber, transaction, type Db } from './database.ts';
import { integerOf } from '../rows.ts';

export class PostgresBlobLinks implements BlobLinkMetadata {
  constructor(private readonly db: Db) {}

  async get(repository: string, digest: Digest): Promise<number | undefined> {
    const { rows } = await this.db.query<{ size: string }>(
      'SELECT b.size FROM blob_links b JOIN repositories r ON r.id = b.repository_id WHERE r.name = $1 AND b.digest = $2',
      [repository, digest],
    );
    const row = rows[0];
    return row && integerOf(row.size);
  }

  async link(repository: string, digest: Digest, size: number, at: Date): Promise<void> {
    await transaction(this.db, async (client) => {
      const repositoryId = await ensureRepository(client, repository, at.getTime());
      await client.query(
        'INSERT INTO blob_links (repository_id, digest, size, linked_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [repositoryId, digest, size, at.getTime()],
      );
    });
  }

  async unlink(repository: string, digest: Digest): Promise<boolean> {
    const result = await this.db.query(
      'DELETE FROM blob_links WHERE digest = $1 AND repository_id = (SELECT id FROM repositories WHERE name = $2)',
      [digest, repository],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async unreferenced(before: Date): Promise<{ repository: string; digest: Digest }[]> {
    const { rows } = await this.db.query<{ repository: string; digest: Digest }>(
      // Starts from the link's own repository's manifests, so a layer shared by thousands of
      // repositories costs one index probe per manifest here, not a walk over all its references.
      `SELECT r.name AS repository, b.digest FROM blob_links b JOIN repositories r ON r.id = b.repository_id
        WHERE b.linked_at < $1 AND NOT EXISTS (
          SELECT 1 FROM manifests m JOIN manifest_references mr ON mr.manifest_id = m.id AND mr.kind = 'blob' AND mr.digest = b.digest
           WHERE m.repository_id = b.repository_id)`,
      [before.getTime()],
    );
    return rows;
  }

  async liveDigests(linkedSince: Date): Promise<Set<string>> {
    // One statement, so both halves come from the same snapshot.
    const { rows } = await this.db.query<{ digest: string }>(
      `SELECT digest FROM blob_links WHERE linked_at >= $1
       UNION SELECT digest FROM manifest_references WHERE kind = 'blob'`,
      [linkedSince.getTime()],
    );
    return new Set(rows.map((row) => row.digest));
  }

  async storedBytes(cacheRule?: string): Promise<number> {
    const { rows } =
      cacheRule === undefined
        ? await this.db.query<{ bytes: string }>('SELECT COALESCE(SUM(size), 0) AS bytes FROM (SELECT DISTINCT digest, size FROM blob_links) d')
        : await this.db.query<{ bytes: string }>(
            `SELECT COALESCE(SUM(size), 0) AS bytes FROM (SELECT DISTINCT b.digest, b.size FROM blob_links b
               JOIN repositories r ON r.id = b.repository_id WHERE r.cache_rule = $1) d`,
            [cacheRule],
          );
    return sumToNumber(rows[0]?.bytes ?? 0);
  }

  async isLive(digest: Digest): Promise<boolean> {
    const { rows } = await this.db.query<{ live: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM blob_links WHERE digest = $1)
           OR EXISTS (SELECT 1 FROM manifest_references WHERE digest = $1 AND kind = 'blob') AS live`,
      [digest],
    );
    return rows[0]?.live === true;
  }
}
