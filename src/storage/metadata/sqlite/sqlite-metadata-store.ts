import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Digest } from '../../../domain/digest.ts';
import type { Descriptor } from '../../../domain/manifest.ts';
import type {
  BlobLinkMetadata,
  IdentityMetadata,
  ManifestSummary,
  CacheRuleMetadata,
  CacheRuleRecord,
  CreationTemplateMetadata,
  CreationTemplateRecord,
  RepositorySettings,
  SecretMetadata,
  SecretRecord,
  TagState,
  ManifestMetadata,
  ManifestRecord,
  MetadataStore,
  NewManifest,
  PageRequest,
  PullRecord,
  RepositoryMetadata,
  RepositoryRecord,
  TagMetadata,
  UploadMetadata,
  UploadSession,
} from '../../metadata-store.ts';
import { MIGRATIONS } from './migrations.ts';
import { SqliteIdentities } from './identities.ts';

type Db = Database.Database;

interface ManifestRow {
  name: string;
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  pushed_at: number;
  last_pulled_at: number | null;
}

/**
 * The embedded metadata store: one SQLite file in WAL mode. better-sqlite3 is synchronous, which
 * suits SQLite (queries take microseconds); the async interface is for drivers that need it.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly repositories: RepositoryMetadata;
  readonly manifests: ManifestMetadata;
  readonly tags: TagMetadata;
  readonly blobLinks: BlobLinkMetadata;
  readonly uploads: UploadMetadata;
  readonly secrets: SecretMetadata;
  readonly cacheRules: CacheRuleMetadata;
  readonly templates: CreationTemplateMetadata;
  readonly identities: IdentityMetadata;

  private constructor(private readonly db: Db) {
    this.repositories = new SqliteRepositories(db);
    this.manifests = new SqliteManifests(db);
    this.tags = new SqliteTags(db);
    this.blobLinks = new SqliteBlobLinks(db);
    this.uploads = new SqliteUploads(db);
    this.secrets = new SqliteSecrets(db);
    this.cacheRules = new SqliteCacheRules(db);
    this.templates = new SqliteTemplates(db);
    this.identities = new SqliteIdentities(db);
  }

  /** Opens (creating if needed) and migrates the database at `path`, or an in-memory one for ':memory:'. */
  static open(path: string): SqliteMetadataStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a process crash at any instant; only an OS crash can lose the
    // latest commits, never consistency.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return new SqliteMetadataStore(db);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`metadata database is at schema ${current}, newer than this Cistern (${MIGRATIONS.length})`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

function ensureRepository(db: Db, name: string, at: number): number {
  const row = db
    .prepare('INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id')
    .get(name, at) as { id: number };
  return row.id;
}

function pageOf(db: Db, sql: string, args: unknown[], page: PageRequest): string[] {
  return db.prepare(sql).pluck().all(...args, page.last ?? '', page.limit) as string[];
}

class SqliteRepositories implements RepositoryMetadata {
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

class SqliteManifests implements ManifestMetadata {
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
      .all(repository, subject) as Pick<ManifestRow, 'digest' | 'media_type' | 'size' | 'artifact_type' | 'annotations'>[];
    return rows.map((row) => ({
      mediaType: row.media_type,
      digest: row.digest as Digest,
      size: row.size,
      ...(row.artifact_type && { artifactType: row.artifact_type }),
      ...(row.annotations && { annotations: JSON.parse(row.annotations) as Record<string, string> }),
    }));
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

function toManifestRecord(row: ManifestRow): ManifestRecord {
  return {
    repository: row.name,
    digest: row.digest as Digest,
    mediaType: row.media_type,
    size: row.size,
    content: row.content,
    ...(row.subject && { subject: row.subject as Digest }),
    ...(row.artifact_type && { artifactType: row.artifact_type }),
    ...(row.annotations && { annotations: JSON.parse(row.annotations) as Record<string, string> }),
    pushedAt: new Date(row.pushed_at),
    ...(row.last_pulled_at !== null && { lastPulledAt: new Date(row.last_pulled_at) }),
  };
}

class SqliteTags implements TagMetadata {
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

class SqliteBlobLinks implements BlobLinkMetadata {
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

class SqliteUploads implements UploadMetadata {
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

interface UploadRow {
  id: string;
  repository: string;
  started_at: number;
  updated_at: number;
}

function toUpload(row: UploadRow): UploadSession {
  return {
    id: row.id,
    repository: row.repository,
    startedAt: new Date(row.started_at),
    updatedAt: new Date(row.updated_at),
  };
}

class SqliteSecrets implements SecretMetadata {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<SecretRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM secrets WHERE name = ? AND deleted_at IS NULL').get(name) as SecretRow | undefined;
    return row && toSecret(row);
  }

  async find(name: string): Promise<SecretRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as SecretRow | undefined;
    return row && toSecret(row);
  }

  async put(secret: { name: string; ciphertext: Buffer; description?: string }, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO secrets (name, ciphertext, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, description = excluded.description,
           updated_at = excluded.updated_at, deleted_at = NULL`,
      )
      .run(secret.name, secret.ciphertext, secret.description ?? null, at.getTime(), at.getTime());
  }

  async list(options: { includeScheduled?: boolean } = {}): Promise<SecretRecord[]> {
    const sql = options.includeScheduled ? 'SELECT * FROM secrets ORDER BY name' : 'SELECT * FROM secrets WHERE deleted_at IS NULL ORDER BY name';
    return (this.db.prepare(sql).all() as SecretRow[]).map(toSecret);
  }

  async scheduleDeletion(name: string, at: Date): Promise<void> {
    this.db.prepare('UPDATE secrets SET deleted_at = ? WHERE name = ?').run(at.getTime(), name);
  }

  async purgeDeleted(now: Date): Promise<number> {
    return this.db.prepare('DELETE FROM secrets WHERE deleted_at IS NOT NULL AND deleted_at <= ?').run(now.getTime()).changes;
  }

  async delete(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes > 0;
  }
}

interface SecretRow {
  name: string;
  ciphertext: Buffer;
  description: string | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

function toSecret(row: SecretRow): SecretRecord {
  return {
    name: row.name,
    ciphertext: row.ciphertext,
    ...(row.description !== null && { description: row.description }),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    ...(row.deleted_at !== null && { deletionDate: new Date(row.deleted_at) }),
  };
}

class SqliteCacheRules implements CacheRuleMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CacheRuleRecord[]> {
    return (this.db.prepare('SELECT * FROM cache_rules ORDER BY prefix').all() as RuleRow[]).map(toRule);
  }

  async get(prefix: string): Promise<CacheRuleRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM cache_rules WHERE prefix = ?').get(prefix) as RuleRow | undefined;
    return row && toRule(row);
  }

  async put(rule: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cache_rules (prefix, upstream_url, upstream_kind, upstream_prefix, credential_secret, settings, source, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (prefix) DO UPDATE SET upstream_url = excluded.upstream_url, upstream_kind = excluded.upstream_kind,
           upstream_prefix = excluded.upstream_prefix, credential_secret = excluded.credential_secret,
           settings = excluded.settings, source = excluded.source, updated_at = excluded.updated_at`,
      )
      .run(
        rule.prefix,
        rule.upstreamUrl,
        rule.upstreamKind,
        rule.upstreamPrefix ?? null,
        rule.credentialSecret ?? null,
        JSON.stringify(rule.settings),
        rule.source,
        at.getTime(),
        at.getTime(),
      );
  }

  async delete(prefix: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM cache_rules WHERE prefix = ?').run(prefix).changes > 0;
  }
}

interface RuleRow {
  prefix: string;
  upstream_url: string;
  upstream_kind: string;
  upstream_prefix: string | null;
  credential_secret: string | null;
  settings: string;
  source: string;
  created_at: number;
  updated_at: number;
}

function toRule(row: RuleRow): CacheRuleRecord {
  return {
    prefix: row.prefix,
    upstreamUrl: row.upstream_url,
    upstreamKind: row.upstream_kind,
    ...(row.upstream_prefix !== null && { upstreamPrefix: row.upstream_prefix }),
    ...(row.credential_secret !== null && { credentialSecret: row.credential_secret }),
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    source: row.source as CacheRuleRecord['source'],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

class SqliteTemplates implements CreationTemplateMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CreationTemplateRecord[]> {
    const rows = this.db.prepare('SELECT * FROM creation_templates ORDER BY prefix').all() as {
      prefix: string;
      body: string;
      source: string;
      created_at: number;
      updated_at: number;
    }[];
    return rows.map((row) => ({
      prefix: row.prefix,
      body: JSON.parse(row.body) as Record<string, unknown>,
      source: row.source as CreationTemplateRecord['source'],
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    }));
  }

  async put(template: Omit<CreationTemplateRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO creation_templates (prefix, body, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (prefix) DO UPDATE SET body = excluded.body, source = excluded.source, updated_at = excluded.updated_at`,
      )
      .run(template.prefix, JSON.stringify(template.body), template.source, at.getTime(), at.getTime());
  }

  async delete(prefix: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM creation_templates WHERE prefix = ?').run(prefix).changes > 0;
  }
}
