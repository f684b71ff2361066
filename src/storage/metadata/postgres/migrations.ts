/**
 * Numbered schema migrations; the `cistern_schema_version` table records which have run. Append only:
 * never edit a migration that has shipped. Times are milliseconds since the epoch (BIGINT).
 *
 * The first three match the SQLite driver's, table for table and column for column. Names and digests
 * are `COLLATE "C"` so that comparisons and ORDER BY go by bytes, as SQLite's BINARY collation does:
 * listings page with `name > last`, and a locale collation would order 'a-b', 'a/b' and 'a0' differently.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the core registry
  `
  CREATE TABLE repositories (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE manifests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    content BYTEA NOT NULL,
    subject TEXT COLLATE "C",
    artifact_type TEXT,
    annotations TEXT,
    pushed_at BIGINT NOT NULL,
    last_pulled_at BIGINT,
    UNIQUE (repository_id, digest)
  );
  CREATE INDEX manifests_by_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;
  CREATE TABLE manifest_references (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    digest TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (manifest_id, kind, digest)
  );
  CREATE INDEX manifest_references_by_digest ON manifest_references (digest);
  CREATE TABLE tags (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
  );
  CREATE INDEX tags_by_digest ON tags (repository_id, digest);
  CREATE TABLE blob_links (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
  );
  CREATE INDEX blob_links_by_digest ON blob_links (digest);
  CREATE TABLE uploads (
    id TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  `,
  // 2: the pull-through cache
  `
  ALTER TABLE repositories ADD COLUMN cache_rule TEXT COLLATE "C";
  ALTER TABLE repositories ADD COLUMN settings TEXT;
  ALTER TABLE tags ADD COLUMN checked_at BIGINT;
  CREATE TABLE secrets (
    name TEXT COLLATE "C" PRIMARY KEY,
    ciphertext BYTEA,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
  );
  CREATE TABLE cache_rules (
    prefix TEXT COLLATE "C" PRIMARY KEY,
    upstream_url TEXT NOT NULL,
    upstream_kind TEXT NOT NULL,
    upstream_prefix TEXT,
    credential_secret TEXT,
    settings TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE creation_templates (
    prefix TEXT COLLATE "C" PRIMARY KEY,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  `,
  // 3: identities, access keys and registry login tokens
  `
  CREATE TABLE users (
    name TEXT COLLATE "C" PRIMARY KEY,
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE access_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_name TEXT COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret BYTEA NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
  );
  CREATE INDEX access_keys_by_user ON access_keys (user_name);
  CREATE TABLE login_tokens (
    hash TEXT COLLATE "C" PRIMARY KEY,
    user_name TEXT COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
  );
  -- PostgreSQL does not index referencing columns by itself; deleting a user cascades through this.
  CREATE INDEX login_tokens_by_user ON login_tokens (user_name);
  `,
  // 4: change notifications for other instances (see changes.ts). The payload is the writer's
  // application_name, which each store instance sets to its own id so that it can ignore its own writes.
  // Statement-level, one trigger per event: only a single-event trigger may see its transition table, and
  // that lets a statement which changed nothing (the ON CONFLICT DO NOTHING behind every blob link) stay
  // silent. Pull times (manifests.last_pulled_at) and tag checks (tags.checked_at) are bookkeeping
  // written all the time and held in no cache, so they notify nobody.
  `
  CREATE FUNCTION cistern_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    -- Channel names are limited to 63 bytes; a long schema name shares a channel at worst (a spurious wake-up).
    PERFORM pg_notify(left('cistern_changes_' || TG_TABLE_SCHEMA, 63), current_setting('application_name'));
    RETURN NULL;
  END $$;
  CREATE FUNCTION cistern_notify_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows) THEN
      PERFORM pg_notify(left('cistern_changes_' || TG_TABLE_SCHEMA, 63), current_setting('application_name'));
    END IF;
    RETURN NULL;
  END $$;

  CREATE TRIGGER repositories_inserted AFTER INSERT ON repositories
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER repositories_updated AFTER UPDATE ON repositories
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER repositories_deleted AFTER DELETE ON repositories
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();

  CREATE TRIGGER manifests_inserted AFTER INSERT ON manifests
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER manifests_updated
    AFTER UPDATE OF repository_id, digest, media_type, size, content, subject, artifact_type, annotations, pushed_at ON manifests
    FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_change();
  CREATE TRIGGER manifests_deleted AFTER DELETE ON manifests
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();

  CREATE TRIGGER tags_inserted AFTER INSERT ON tags
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER tags_retargeted AFTER UPDATE OF digest ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_change();
  CREATE TRIGGER tags_deleted AFTER DELETE ON tags
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();

  CREATE TRIGGER cache_rules_inserted AFTER INSERT ON cache_rules
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER cache_rules_updated AFTER UPDATE ON cache_rules
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER cache_rules_deleted AFTER DELETE ON cache_rules
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();

  CREATE TRIGGER creation_templates_inserted AFTER INSERT ON creation_templates
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER creation_templates_updated AFTER UPDATE ON creation_templates
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  CREATE TRIGGER creation_templates_deleted AFTER DELETE ON creation_templates
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_rows_changed();
  `,
  // 5: notices name the repositories a change touched, so that other instances forget only those; changes
  // that name none (cache rules, templates, column updates without transition tables) or too many for one
  // notice (8000 bytes) still say "anything". Tags get an UPDATE trigger with transition tables in place of
  // migration 4's column trigger, which fired for every tag upsert (ON CONFLICT DO UPDATE runs the UPDATE
  // statement triggers even when nothing conflicted): now only a tag whose digest moved is news.
  `
  CREATE OR REPLACE FUNCTION cistern_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify(left('cistern_changes_' || TG_TABLE_SCHEMA, 63), json_build_object('i', current_setting('application_name'))::text);
    RETURN NULL;
  END $$;
  CREATE OR REPLACE FUNCTION cistern_notify_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    names text[];
    notice text;
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed_rows) THEN
      RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'repositories' THEN
      SELECT array_agg(DISTINCT name) INTO names FROM changed_rows;
    ELSIF TG_TABLE_NAME IN ('manifests', 'tags') THEN
      SELECT array_agg(DISTINCT r.name) INTO names FROM changed_rows c JOIN repositories r ON r.id = c.repository_id;
      -- Rows whose repository is gone went with it (a cascade): the repository's own trigger names it.
      IF names IS NULL THEN
        RETURN NULL;
      END IF;
    END IF;
    notice := json_build_object('i', current_setting('application_name'), 'r', names)::text;
    IF names IS NULL OR octet_length(notice) > 7900 THEN
      notice := json_build_object('i', current_setting('application_name'))::text;
    END IF;
    PERFORM pg_notify(left('cistern_changes_' || TG_TABLE_SCHEMA, 63), notice);
    RETURN NULL;
  END $$;
  CREATE FUNCTION cistern_notify_tags_moved() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    names text[];
    notice text;
  BEGIN
    SELECT array_agg(DISTINCT r.name) INTO names
      FROM new_rows n
      JOIN old_rows o ON o.repository_id = n.repository_id AND o.name = n.name
      JOIN repositories r ON r.id = n.repository_id
     WHERE o.digest IS DISTINCT FROM n.digest;
    IF names IS NULL THEN
      RETURN NULL;
    END IF;
    notice := json_build_object('i', current_setting('application_name'), 'r', names)::text;
    IF octet_length(notice) > 7900 THEN
      notice := json_build_object('i', current_setting('application_name'))::text;
    END IF;
    PERFORM pg_notify(left('cistern_changes_' || TG_TABLE_SCHEMA, 63), notice);
    RETURN NULL;
  END $$;
  DROP TRIGGER tags_retargeted ON tags;
  CREATE TRIGGER tags_moved AFTER UPDATE ON tags
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cistern_notify_tags_moved();
  `,
];
