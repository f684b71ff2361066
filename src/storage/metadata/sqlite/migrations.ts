/**
 * Numbered schema migrations; `PRAGMA user_version` records how many have run. Append only: never edit
 * a migration that has shipped. Times are milliseconds since the epoch.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the core registry
  `
  CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE manifests (
    id INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    subject TEXT,
    artifact_type TEXT,
    annotations TEXT,
    pushed_at INTEGER NOT NULL,
    last_pulled_at INTEGER,
    UNIQUE (repository_id, digest)
  );
  CREATE INDEX manifests_by_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;
  CREATE TABLE manifest_references (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    digest TEXT NOT NULL,
    PRIMARY KEY (manifest_id, kind, digest)
  ) WITHOUT ROWID;
  CREATE INDEX manifest_references_by_digest ON manifest_references (digest);
  CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
  ) WITHOUT ROWID;
  CREATE INDEX tags_by_digest ON tags (repository_id, digest);
  CREATE TABLE blob_links (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX blob_links_by_digest ON blob_links (digest);
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // 2: the pull-through cache
  `
  ALTER TABLE repositories ADD COLUMN cache_rule TEXT;
  ALTER TABLE repositories ADD COLUMN settings TEXT;
  ALTER TABLE tags ADD COLUMN checked_at INTEGER;
  CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    ciphertext BLOB,
    description TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
  );
  CREATE TABLE cache_rules (
    prefix TEXT PRIMARY KEY,
    upstream_url TEXT NOT NULL,
    upstream_kind TEXT NOT NULL,
    upstream_prefix TEXT,
    credential_secret TEXT,
    settings TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE creation_templates (
    prefix TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // 3: identities, access keys and registry login tokens
  `
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
  );
  CREATE INDEX access_keys_by_user ON access_keys (user_name);
  CREATE TABLE login_tokens (
    hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
  );
  `,
];
