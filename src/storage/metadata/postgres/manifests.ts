import type pg from 'pg';
import type { Digest } from '../../../domain/digest.ts';
import type { Descriptor } from '../../../domain/manifest.ts';
import type {
  ManifestMetadata,
  ManifestRecord,
  ManifestSummary,
  NewManifest,
  PullRecord,
} from '../../metadata-store.ts';
import { ensureRepository, sumToNumber, transaction, type Db } from './database.ts';
import { dateOf, integerOf, toManifestRecord, toReferrer, type ManifestRow, type ReferrerRow } from '../rows.ts';

const SELECT_ONE = `
  SELECT r.name, m.digest, m.media_type, m.size, m.content, m.subject, m.artifact_type, m.annotations,
         m.pushed_at, m.last_pulled_at
    FROM manifests m JOIN repositories r ON r.id = m.repository_id
   WHERE r.name = $1 AND m.digest = $2`;

const LIST = `
  SELECT m.digest, m.media_type, m.size, m.pushed_at, m.last_pulled_at,
         ARRAY(SELECT t.name FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest) AS tags,
         (SELECT COALESCE(SUM(b.size), 0) FROM manifest_references mr
            JOIN blob_links b ON b.repository_id = m.repository_id AND b.digest = mr.digest
           WHERE mr.manifest_id = m.id AND mr.kind = 'blob') AS blob_bytes,
         ARRAY(SELECT mr.digest FROM manifest_references mr
                WHERE mr.manifest_id = m.id AND mr.kind = 'manifest' ORDER BY mr.digest) AS children,
         EXISTS (SELECT 1 FROM manifest_references mr JOIN manifests p ON p.id = mr.manifest_id
                  WHERE p.repository_id = m.repository_id AND mr.kind = 'manifest' AND mr.digest = m.digest) AS in_index
    FROM manifests m JOIN repositories r ON r.id = m.repository_id
   WHERE r.name = $1 ORDER BY m.pushed_at, m.digest`;

// One statement, so a batch is all or nothing. Rows are locked in id order before they are updated, so
// two instances flushing overlapping batches queue rather than deadlock.
const RECORD_PULLS = `
  WITH pulls AS (
    SELECT r.id AS repository_id, p.digest, MAX(p.at) AS at
      FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p(repository, digest, at)
      JOIN repositories r ON r.name = p.repository
     GROUP BY r.id, p.digest
  ), targets AS (
    SELECT m.id, pulls.at FROM manifests m
      JOIN pulls ON m.repository_id = pulls.repository_id AND m.digest = pulls.digest
     ORDER BY m.id FOR NO KEY UPDATE OF m
  )
  UPDATE manifests m SET last_pulled_at = GREATEST(COALESCE(m.last_pulled_at, 0), targets.at)
    FROM targets WHERE m.id = targets.id`;

export class PostgresManifests implements ManifestMetadata {
  constructor(private readonly db: Db) {}

  async get(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const { rows } = await this.db.query<ManifestRow>(SELECT_ONE, [repository, digest]);
    const row = rows[0];
    return row && toManifestRecord(row);
  }

  async put(manifest: NewManifest): Promise<void> {
    const at = manifest.at.getTime();
    await transaction(this.db, async (client) => {
      const repositoryId = await ensureRepository(client, manifest.repository, at);
      await insertOrHold(client, repositoryId, manifest, at);
      if (manifest.tag !== undefined) {
        await client.query(
          `INSERT INTO tags (repository_id, name, digest, updated_at, checked_at) VALUES ($1, $2, $3, $4, $4)
           ON CONFLICT (repository_id, name) DO UPDATE
             SET digest = excluded.digest, updated_at = excluded.updated_at, checked_at = excluded.checked_at`,
          [repositoryId, manifest.tag, manifest.digest, at],
        );
      }
    });
  }

  async delete(repository: string, digest: Digest): Promise<boolean> {
    return transaction(this.db, async (client) => {
      const repo = (await client.query<{ id: string }>('SELECT id FROM repositories WHERE name = $1', [repository])).rows[0];
      if (!repo) return false;
      // The manifest first: its row lock waits out a put that is tagging it (see insertOrHold), and the
      // tag delete then runs on a snapshot that sees that put's tag.
      const deleted = await client.query('DELETE FROM manifests WHERE repository_id = $1 AND digest = $2', [repo.id, digest]);
      await client.query('DELETE FROM tags WHERE repository_id = $1 AND digest = $2', [repo.id, digest]);
      return (deleted.rowCount ?? 0) > 0;
    });
  }

  async referrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const { rows } = await this.db.query<ReferrerRow>(
      `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
         FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE r.name = $1 AND m.subject = $2 ORDER BY m.pushed_at, m.digest`,
      [repository, subject],
    );
    return rows.map(toReferrer);
  }

  async list(repository: string): Promise<ManifestSummary[]> {
    const { rows } = await this.db.query<{
      digest: string;
      media_type: string;
      size: string;
      pushed_at: string;
      last_pulled_at: string | null;
      tags: string[];
      blob_bytes: string;
      children: string[];
      in_index: boolean;
    }>(LIST, [repository]);
    return rows.map((row) => ({
      digest: row.digest as Digest,
      mediaType: row.media_type,
      size: integerOf(row.size),
      tags: row.tags.sort(),
      blobBytes: sumToNumber(row.blob_bytes),
      children: row.children as Digest[],
      inIndex: row.in_index,
      pushedAt: dateOf(row.pushed_at),
      ...(row.last_pulled_at !== null && { lastPulledAt: dateOf(row.last_pulled_at) }),
    }));
  }

  async referencesBlob(repository: string, digest: Digest): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM manifest_references mr
         JOIN manifests m ON m.id = mr.manifest_id
         JOIN repositories r ON r.id = m.repository_id
        WHERE mr.digest = $1 AND mr.kind = 'blob' AND r.name = $2 LIMIT 1`,
      [digest, repository],
    );
    return (rowCount ?? 0) > 0;
  }

  async recordPulls(pulls: PullRecord[]): Promise<void> {
    if (pulls.length === 0) return;
    await this.db.query(RECORD_PULLS, [
      pulls.map((pull) => pull.repository),
      pulls.map((pull) => pull.digest),
      pulls.map((pull) => pull.at.getTime()),
    ]);
  }
}

/**
 * Inserts the manifest with its references, or, when it is already there and a tag is about to point
 * at it, holds its row (FOR KEY SHARE) until commit: otherwise a concurrent delete, whose tag cleanup
 * cannot see this uncommitted tag, could leave the tag pointing at nothing. SQLite's single writer
 * rules that out by itself.
 */
async function insertOrHold(client: pg.PoolClient, repositoryId: string, manifest: NewManifest, at: number): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO manifests (repository_id, digest, media_type, size, content, subject, artifact_type, annotations, pushed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
      [
        repositoryId,
        manifest.digest,
        manifest.mediaType,
        manifest.content.length,
        manifest.content,
        manifest.subject ?? null,
        manifest.artifactType ?? null,
        manifest.annotations ? JSON.stringify(manifest.annotations) : null,
        at,
      ],
    );
    const id = inserted.rows[0]?.id;
    if (id !== undefined) {
      const references = [
        ...manifest.references.blobs.map((digest) => ['blob', digest] as const),
        ...manifest.references.manifests.map((digest) => ['manifest', digest] as const),
      ];
      await client.query(
        `INSERT INTO manifest_references (manifest_id, kind, digest)
         SELECT $1, r.kind, r.digest FROM unnest($2::text[], $3::text[]) AS r(kind, digest)
         ON CONFLICT DO NOTHING`,
        [id, references.map(([kind]) => kind), references.map(([, digest]) => digest)],
      );
      return;
    }
    // Storing the same digest again changes nothing but the tag.
    if (manifest.tag === undefined) return;
    const held = await client.query('SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE', [
      repositoryId,
      manifest.digest,
    ]);
    if ((held.rowCount ?? 0) > 0) return;
    // Deleted since the insert looked: store it afresh.
  }
  throw new Error('manifest is being stored and deleted concurrently; giving up');
}

