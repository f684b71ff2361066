import type { Digest } from '../../../domain/digest.ts';
import type { Descriptor } from '../../../domain/manifest.ts';
import type {
  ManifestMetadata,
  ManifestRecord,
  ManifestSummary,
  NewManifest,
  PullRecord,
} from '../../metadata-store.ts';
import { ensureRepository, type Db } from './database.ts';
import { toManifestRecord, toReferrer, type ManifestRow, type ReferrerRow } from '../rows.ts';

/**
 * The embedded metadata store: one SQLite file in WAL mode. better-sqlite3 is synchronous, which
 * suits SQLite (queries take microseconds); the async interface is for drivers that need it.
 */

export class SqliteManifests implements ManifestMetadata {
  private readonly selectOne;
  private readonly listStatement;
  constructor(private readonly db: Db) {
    this.listStatement = db.prepare(
      `SELECT m.digest, m.media_type, m.size, m.pushed_at, m.last_pulled_at,
                (SELECT group_concat(t.name, char(10)) FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest) AS tags,
                (SELECT COALESCE(SUM(b.size), 0) FROM manifest_references mr
                   JOIN blob_links b ON b.repository_id = m.repository_id AND b.digest = mr.digest
                  WHERE mr.manifest_id = m.id AND mr.kind = 'blob') AS blob_bytes,
                (SELECT group_concat(mr.digest, char(10)) FROM manifest_references mr
                  WHERE mr.manifest_id = m.id AND mr.kind = 'manifest') AS children,
                EXISTS (SELECT 1 FROM manifest_references mr JOIN manifests p ON p.id = mr.manifest_id
                         WHERE p.repository_id = m.repository_id AND mr.kind = 'manifest' AND mr.digest = m.digest) AS in_index
           FROM manifests m JOIN repositories r ON r.id = m.repository_id
          WHERE r.name = ? ORDER BY m.pushed_at, m.digest`,
    );
    this.selectOne = db.prepare(
      `SELECT r.name, m.digest, m.media_type, m.size, m.content, m.subject, m.artifact_type, m.annotations,
              m.pushed_at, m.last_pulled_at
         FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE r.name = ? AND m.digest = ?`,
    );
  }

  async get(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const row = this.selectOne.get(repository, digest) as ManifestRow | undefined;
    return row && toManifestRecord(row);
  }

  async put(manifest: NewManifest): Promise<void> {
    const at = manifest.at.getTime();
    this.db.transaction(() => {
      const repositoryId = ensureRepository(this.db, manifest.repository, at);
      const inserted = this.db
        .prepare(
          `INSERT INTO manifests (repository_id, digest, media_type, size, content, subject, artifact_type, annotations, pushed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
        )
        .get(
          repositoryId,
          manifest.digest,
          manifest.mediaType,
          manifest.content.length,
          manifest.content,
          manifest.subject ?? null,
          manifest.artifactType ?? null,
          manifest.annotations ? JSON.stringify(manifest.annotations) : null,
          at,
        ) as { id: number } | undefined;
      if (inserted) {
        const reference = this.db.prepare(
          'INSERT OR IGNORE INTO manifest_references (manifest_id, kind, digest) VALUES (?, ?, ?)',
        );
        for (const digest of manifest.references.blobs) reference.run(inserted.id, 'blob', digest);
        for (const digest of manifest.references.manifests) reference.run(inserted.id, 'manifest', digest);
      }
      if (manifest.tag !== undefined) {
        this.db
          .prepare(
            `INSERT INTO tags (repository_id, name, digest, updated_at, checked_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (repository_id, name) DO UPDATE
               SET digest = excluded.digest, updated_at = excluded.updated_at, checked_at = excluded.checked_at`,
          )
          .run(repositoryId, manifest.tag, manifest.digest, at, at);
      }
    })();
  }

  async delete(repository: string, digest: Digest): Promise<boolean> {
    return this.db.transaction(() => {
      const repo = this.db.prepare('SELECT id FROM repositories WHERE name = ?').get(repository) as
        | { id: number }
        | undefined;
      if (!repo) return false;
      this.db.prepare('DELETE FROM tags WHERE repository_id = ? AND digest = ?').run(repo.id, digest);
      return this.db.prepare('DELETE FROM manifests WHERE repository_id = ? AND digest = ?').run(repo.id, digest).changes > 0;
    })();
  }

  async referrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const rows = this.db
      .prepare(
        `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
           FROM manifests m JOIN repositories r ON r.id = m.repository_id
          WHERE r.name = ? AND m.subject = ? ORDER BY m.pushed_at, m.digest`,
      )
      .all(repository, subject) as ReferrerRow[];
    return rows.map(toReferrer);
  }

  async list(repository: string): Promise<ManifestSummary[]> {
    const rows = this.listStatement
      .all(repository) as {
      digest: string;
      media_type: string;
      size: number;
      pushed_at: number;
      last_pulled_at: number | null;
      tags: string | null;
      blob_bytes: number;
      children: string | null;
      in_index: number;
    }[];
    return rows.map((row) => ({
      digest: row.digest as Digest,
      mediaType: row.media_type,
      size: row.size,
      tags: row.tags ? row.tags.split('\n').sort() : [],
      blobBytes: row.blob_bytes,
      children: row.children ? (row.children.split('\n') as Digest[]) : [],
      inIndex: row.in_index === 1,
      pushedAt: new Date(row.pushed_at),
      ...(row.last_pulled_at !== null && { lastPulledAt: new Date(row.last_pulled_at) }),
    }));
  }

  async referencesBlob(repository: string, digest: Digest): Promise<boolean> {
    const row = this.db
      .prepare(
        `SELECT 1 FROM manifest_references mr
           JOIN manifests m ON m.id = mr.manifest_id
           JOIN repositories r ON r.id = m.repository_id
          WHERE mr.digest = ? AND mr.kind = 'blob' AND r.name = ? LIMIT 1`,
      )
      .get(digest, repository);
    return row !== undefined;
  }

  async recordPulls(pulls: PullRecord[]): Promise<void> {
    const update = this.db.prepare(
      `UPDATE manifests SET last_pulled_at = MAX(COALESCE(last_pulled_at, 0), ?)
        WHERE digest = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)`,
    );
    this.db.transaction(() => {
      for (const pull of pulls) update.run(pull.at.getTime(), pull.digest, pull.repository);
    })();
  }
}

