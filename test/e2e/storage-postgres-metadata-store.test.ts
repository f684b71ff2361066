/**
 * The PostgreSQL metadata store against a real server: the driver contract, plus what only a shared,
 * networked database can get wrong (migrating instances racing, change notifications between instances).
 * Every store gets a schema of its own, dropped afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { digestOf } from '../../src/domain/digest.ts';
import { MIGRATIONS } from '../../src/storage/metadata/postgres/migrations.ts';
import { PostgresMetadataStore } from '../../src/storage/metadata/postgres/postgres-metadata-store.ts';
import { metadataStoreContract } from '../contract/metadata-store.contract.ts';

const POSTGRES_URL = process.env['CISTERN_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

function shownUrl(): string {
  try {
    const url = new URL(POSTGRES_URL);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return POSTGRES_URL;
  }
}

let reachable: Promise<void> | undefined;

/** Fails (never skips) with what to do when there is no server to test against. */
function requirePostgres(): Promise<void> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (err) {
      throw new Error(
        `PostgreSQL is not reachable at ${shownUrl()} (${err instanceof Error ? err.message : String(err)}). ` +
          'Start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start (or point CISTERN_TEST_POSTGRES_URL at a server)',
      );
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/** Runs statements as a plain client: another process, as far as the store can tell. */
async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function freshSchema(): string {
  return `cistern_test_${randomBytes(8).toString('hex')}`;
}

async function dropSchema(schema: string): Promise<void> {
  await admin((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

async function open(schema: string): Promise<PostgresMetadataStore> {
  await requirePostgres();
  return PostgresMetadataStore.open({ url: POSTGRES_URL, schema, poolSize: 4 });
}

metadataStoreContract('postgres', async () => {
  const schema = freshSchema();
  const store = await open(schema);
  return {
    store,
    async cleanup() {
      await store.close();
      await dropSchema(schema);
    },
  };
});

const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));

async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await settle(10);
  return check();
}

/** Runs `test` with a fresh schema, always dropped afterwards. */
/** A fresh schema with two store instances on it, as two Cisterns sharing one database. */
async function withTwoStores(test: (a: PostgresMetadataStore, b: PostgresMetadataStore, schema: string) => Promise<void>): Promise<void> {
  await withSchema(async (schema) => {
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    try {
      await test(a, b, schema);
    } finally {
      await b.close();
      await a.close();
    }
  });
}

async function withSchema(test: (schema: string) => Promise<void>): Promise<void> {
  await requirePostgres();
  const schema = freshSchema();
  try {
    await test(schema);
  } finally {
    await dropSchema(schema);
  }
}

async function appliedMigrations(schema: string): Promise<{ version: number; applied_at: string }[]> {
  const { rows } = await admin((client) =>
    client.query<{ version: number; applied_at: string }>(`SELECT version, applied_at FROM "${schema}".cistern_schema_version ORDER BY version`),
  );
  return rows;
}

const IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

// Beyond the contract: what only a shared PostgreSQL database can get wrong.
describe('PostgresMetadataStore specifics', () => {
  it('migrates once: a second open of the same schema is a no-op, and data survives close and reopen', async () => {
    await withSchema(async (schema) => {
      const content = Buffer.from('{"schemaVersion":2}');
      const digest = digestOf(content);
      const layer = digestOf(Buffer.from('layer'));
      const at = new Date('2024-03-01T12:00:00.000Z');

      const first = await open(schema);
      await first.manifests.put({
        repository: 'r',
        digest,
        mediaType: IMAGE_MANIFEST,
        content,
        references: { blobs: [layer], manifests: [] },
        tag: 'latest',
        at,
      });
      await first.blobLinks.link('r', layer, 2 ** 40 + 7, at);
      await first.uploads.create({ id: 'u', repository: 'r', startedAt: at, updatedAt: at });
      await first.close();
      const migrated = await appliedMigrations(schema);
      assert.deepEqual(
        migrated.map((m) => m.version),
        MIGRATIONS.map((_, i) => i + 1),
      );

      const second = await open(schema);
      try {
        assert.deepEqual(await appliedMigrations(schema), migrated, 'nothing ran again');
        assert.deepEqual(await second.repositories.list({ limit: 10 }), ['r']);
        assert.equal(await second.tags.resolve('r', 'latest'), digest);
        assert.ok((await second.manifests.get('r', digest))?.content.equals(content));
        const size = await second.blobLinks.get('r', layer);
        assert.equal(typeof size, 'number', 'BIGINT comes back as a number');
        assert.equal(size, 2 ** 40 + 7);
        assert.equal(await second.blobLinks.storedBytes(), 2 ** 40 + 7);
        assert.deepEqual(await second.uploads.get('u'), { id: 'u', repository: 'r', startedAt: at, updatedAt: at });
      } finally {
        await second.close();
      }
    });
  });

  it('instances opened together on a fresh schema all succeed, and migrate it exactly once', async () => {
    await withSchema(async (schema) => {
      const stores = await Promise.all(Array.from({ length: 4 }, () => open(schema)));
      try {
        assert.equal((await appliedMigrations(schema)).length, MIGRATIONS.length);
        await Promise.all(stores.map((store, i) => store.repositories.create(`repo-${i}`, {}, new Date())));
        for (const store of stores) {
          assert.deepEqual(await store.repositories.list({ limit: 10 }), ['repo-0', 'repo-1', 'repo-2', 'repo-3']);
        }
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    });
  });

  it('refuses a schema newer than the code', async () => {
    await withSchema(async (schema) => {
      await (await open(schema)).close();
      await admin((client) => client.query(`INSERT INTO "${schema}".cistern_schema_version (version, applied_at) VALUES (999, 0)`));
      await assert.rejects(open(schema), /schema .* is at version 999, newer than this Cistern/);
    });
  });

  it('names the repositories another instance changed, and names none for changes beyond repositories', async () => {
    await withTwoStores(async (server, cli) => {
      const notices: (string[] | undefined)[] = [];
      const stop = server.watchExternalChanges((repositories) => notices.push(repositories));
      try {
        await stop.ready;
        const m = Buffer.from('{"schemaVersion":2,"named":1}');
        await cli.manifests.put({ repository: 'team/app', digest: digestOf(m), mediaType: IMAGE_MANIFEST, content: m, references: { blobs: [], manifests: [] }, tag: 'v1', at: new Date() });
        assert.ok(await within(2000, () => notices.length >= 1));
        await settle();
        assert.ok(notices.every((n) => n !== undefined && n.length === 1 && n[0] === 'team/app'), JSON.stringify(notices));
        notices.length = 0;
        await cli.cacheRules.put({ prefix: 'hub', upstreamUrl: 'https://registry-1.docker.io', upstreamKind: 'docker-hub', settings: {}, source: 'api' }, new Date());
        assert.ok(await within(2000, () => notices.length === 1));
        assert.equal(notices[0], undefined, 'a rule change may matter to anything');
      } finally {
        stop();
      }
    });
  });

  it('tells a watcher about commits from another instance, not about its own, nor about bookkeeping', async () => {
    await withTwoStores(async (server, cli, schema) => {
      let seen = 0;
      const stop = server.watchExternalChanges(() => seen++);
      try {
        await stop.ready;
        const m = Buffer.from('{"schemaVersion":2,"watch":1}');
        const digest = digestOf(m);
        const layer = digestOf(Buffer.from('watched layer'));

        // Its own writes, of every kind, are not news.
        await server.repositories.create('own/write', {}, new Date());
        await server.manifests.put({ repository: 'own/write', digest, mediaType: IMAGE_MANIFEST, content: m, references: { blobs: [layer], manifests: [] }, tag: 'v1', at: new Date() });
        await server.cacheRules.put({ prefix: 'hub', upstreamUrl: 'https://registry-1.docker.io', upstreamKind: 'docker-hub', settings: {}, source: 'api' }, new Date());
        await server.templates.put({ prefix: 'ROOT', body: {}, source: 'api' }, new Date());
        await server.tags.delete('own/write', 'v1');
        await settle();
        assert.equal(seen, 0, 'its own commits are not news');

        // Another instance's commit is, once.
        await cli.repositories.create('other/write', {}, new Date());
        assert.ok(await within(2000, () => seen === 1), `seen ${seen} after another instance's commit`);
        await settle();
        assert.equal(seen, 1, 'once per change');

        // Bookkeeping another instance writes all the time is not: tag checks, pull times, blob links
        // into a repository that exists, statements that change nothing.
        await server.manifests.put({ repository: 'own/write', digest, mediaType: IMAGE_MANIFEST, content: m, references: { blobs: [layer], manifests: [] }, tag: 'v2', at: new Date() });
        await settle();
        seen = 0;
        await cli.tags.markChecked('own/write', 'v2', new Date());
        await cli.manifests.recordPulls([{ repository: 'own/write', digest, at: new Date() }]);
        await cli.blobLinks.link('own/write', layer, 5, new Date());
        await cli.repositories.create('own/write', {}, new Date());
        await cli.tags.delete('own/write', 'no-such-tag');
        await cli.cacheRules.delete('no-such-rule');
        await cli.manifests.put({ repository: 'own/write', digest, mediaType: IMAGE_MANIFEST, content: m, references: { blobs: [layer], manifests: [] }, at: new Date() });
        await settle();
        assert.equal(seen, 0, 'bookkeeping is not news');

        // What caches hold is: a tag moved, a rule, a template, a deletion, each one commit. (Putting a tag
        // where it already points changes nothing: only a tag that moves to another manifest is news.)
        const moved = Buffer.from('{"schemaVersion":2,"watch":2}');
        await cli.manifests.put({ repository: 'own/write', digest, mediaType: IMAGE_MANIFEST, content: m, references: { blobs: [], manifests: [] }, tag: 'v2', at: new Date() });
        await settle();
        assert.equal(seen, 0, 'a tag put where it already points is not news');
        for (const change of [
          () => cli.manifests.put({ repository: 'own/write', digest: digestOf(moved), mediaType: IMAGE_MANIFEST, content: moved, references: { blobs: [], manifests: [] }, tag: 'v2', at: new Date() }),
          () => cli.tags.delete('own/write', 'v2'),
          () => cli.cacheRules.put({ prefix: 'hub', upstreamUrl: 'https://mirror.gcr.io', upstreamKind: 'docker-hub', settings: {}, source: 'api' }, new Date()),
          () => cli.templates.delete('ROOT'),
          () => cli.repositories.updateSettings('own/write', { scanOnPush: true }),
          () => cli.manifests.delete('own/write', digest),
          () => cli.repositories.delete('own/write'),
        ]) {
          const before = seen;
          await change();
          assert.ok(await within(2000, () => seen === before + 1), `seen ${seen}, expected ${before + 1}`);
        }

        // Another process altogether (not a Cistern store) counts as well.
        const before = seen;
        await admin((client) => client.query(`DELETE FROM "${schema}".cache_rules`));
        assert.ok(await within(2000, () => seen === before + 1), 'a plain client deleting rules');

        // Once stopped, nothing more.
        stop();
        await settle(50);
        const stoppedAt = seen;
        await cli.repositories.create('after/stop', {}, new Date());
        await settle();
        assert.equal(seen, stoppedAt, 'no calls after stop');
      } finally {
        stop();
      }
    });
  });

  it('survives its connections being killed: the watcher reconnects and reports a change it may have missed', async () => {
    await withTwoStores(async (server, cli, schema) => {
      let seen = 0;
      const stop = server.watchExternalChanges(() => seen++);
      try {
        await stop.ready;
        await server.repositories.create('before/kill', {}, new Date());
        // Every connection of the watching instance (they share its application_name): listener and pool.
        const killed = await admin((client) =>
          client.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name IN (SELECT application_name FROM pg_stat_activity WHERE query = $1)`,
            [`LISTEN "cistern_changes_${schema}"`],
          ),
        );
        assert.ok((killed.rowCount ?? 0) >= 2, `killed ${killed.rowCount} connections`);
        assert.ok(await within(3000, () => seen === 1), 'told once it is listening again');
        await cli.repositories.create('after/kill', {}, new Date());
        assert.ok(await within(2000, () => seen === 2), 'and hears other instances again');
        assert.deepEqual(await server.repositories.list({ limit: 10 }), ['after/kill', 'before/kill'], 'the pool reconnects too');
      } finally {
        stop();
      }
    });
  });

  it('keeps tags and manifests consistent when instances push and delete the same manifest at once', async () => {
    await withTwoStores(async (a, b) => {
      const content = Buffer.from('{"schemaVersion":2,"race":true}');
      const digest = digestOf(content);
      const put = (store: PostgresMetadataStore, tag: string) =>
        store.manifests.put({ repository: 'race', digest, mediaType: IMAGE_MANIFEST, content, references: { blobs: [], manifests: [] }, tag, at: new Date() });
      await put(a, 'seed');
      for (let round = 0; round < 25; round++) {
        await Promise.all([put(a, `t${round}`), b.manifests.delete('race', digest), put(b, `u${round}`), a.manifests.delete('race', digest)]);
        const manifest = await a.manifests.get('race', digest);
        const tags = await a.tags.list('race', { limit: 1000 });
        if (!manifest) assert.deepEqual(tags, [], `round ${round}: tags ${tags.join(', ')} point at a deleted manifest`);
      }
    });
  });

  it('holds a named lock across instances, and lets go when the holder\'s session ends', async () => {
    await withTwoStores(async (a, b) => {
      const order: string[] = [];
      let releaseA!: () => void;
      const held = new Promise<void>((resolve) => (releaseA = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const first = a.locks.with('manifest:x', async () => {
        order.push('a in');
        entered();
        await held;
        order.push('a out');
      });
      await inside;
      const second = b.locks.with('manifest:x', async () => void order.push('b in'));
      const other = b.locks.with('manifest:y', async () => void order.push('b other'));
      await other;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(order, ['a in', 'b other'], 'b waits for a on the same name only');
      releaseA();
      await Promise.all([first, second]);
      assert.deepEqual(order, ['a in', 'b other', 'a out', 'b in']);

      // An instance that dies holding a lock does not hold it for ever: its session's locks go with it.
      let hang!: () => void;
      const stuck = a.locks.with('manifest:z', () => new Promise<void>((resolve) => (hang = resolve)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await admin((client) =>
        client.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND granted"),
      );
      assert.equal(await b.locks.with('manifest:z', async () => 'taken'), 'taken');
      hang();
      await stuck.catch(() => undefined);
    });
  });

  it('answers a readiness ping at once while every connection is busy, if a query just succeeded', async () => {
    await withSchema(async (schema) => {
      await requirePostgres();
      const store = await PostgresMetadataStore.open({ url: POSTGRES_URL, schema, poolSize: 1 });
      const blocker = new pg.Client({ connectionString: POSTGRES_URL });
      await blocker.connect();
      try {
        await store.repositories.list({ limit: 1 });
        // Another session locks the table, so the store's only connection waits in a query: busy, not unavailable.
        await blocker.query('BEGIN');
        await blocker.query(`LOCK TABLE "${schema}".repositories IN ACCESS EXCLUSIVE MODE`);
        const waiting = store.repositories.list({ limit: 1 });
        await settle(100);
        const started = Date.now();
        await store.ping();
        assert.ok(Date.now() - started < 500, 'ping did not queue behind the busy pool');
        await blocker.query('COMMIT');
        await waiting;
      } finally {
        await blocker.end();
        await store.close();
      }
    });
  });

  it('works without a lock, after a short wait, when every lock connection is taken', async () => {
    await withSchema(async (schema) => {
      await requirePostgres();
      const store = await PostgresMetadataStore.open({ url: POSTGRES_URL, schema, poolSize: 1 });
      try {
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let entered!: () => void;
        const inside = new Promise<void>((resolve) => (entered = resolve));
        const first = store.locks.with('manifest:slow-upstream', async () => {
          entered();
          await held;
        });
        await inside;
        const started = Date.now();
        assert.equal(await store.locks.with('manifest:other', async () => 'done'), 'done');
        const waited = Date.now() - started;
        assert.ok(waited >= 1500 && waited < 10_000, `waited ${waited} ms for a lock connection before going ahead`);
        release();
        await first;
      } finally {
        await store.close();
      }
    });
  });

  it('refuses a schema name that is not a plain identifier, before connecting', async () => {
    for (const schema of ['Cistern', 'a-b', 'x; DROP SCHEMA public CASCADE', '"quoted"', '', '1abc', 'a'.repeat(64), 'pg_catalog', 'white space', 'é']) {
      // An unusable URL too: the name is refused before any connection is tried.
      await assert.rejects(PostgresMetadataStore.open({ url: 'postgres://nobody@invalid.invalid/none', schema }), /schema name .* is not usable/, schema);
    }
  });

  it('keeps sealed values out of its errors', async () => {
    await withSchema(async (schema) => {
      const store = await open(schema);
      try {
        await store.identities.putUser({ name: 'alice', policy: [] }, new Date());
        const sealed = Buffer.from('5ea1ed5ec2e7bytes', 'hex');
        // A NOT NULL violation: PostgreSQL's detail would list the whole failing row, sealed secret included.
        const noUser = { id: 'CKIAFAILING000000001', userName: null as unknown as string, sealedSecret: sealed, active: true };
        await assert.rejects(store.identities.putKey(noUser, new Date()), (err: Error & { detail?: string; code?: string }) => {
          assert.equal(err.code, '23502');
          assert.equal(err.detail, undefined);
          assert.doesNotMatch(JSON.stringify({ ...err, message: err.message }), /5ea1ed5ec2e7/);
          return true;
        });
        await store.identities.putLoginToken('a'.repeat(64), 'alice', new Date());
        await assert.rejects(store.identities.putLoginToken('a'.repeat(64), 'alice', new Date()), (err: Error & { detail?: string }) => {
          assert.equal(err.detail, undefined, 'not even the token hash');
          return true;
        });
      } finally {
        await store.close();
      }
    });
  });

  it('pages with the limits callers use: none in effect (MAX_SAFE_INTEGER), and negative as in SQLite', async () => {
    await withSchema(async (schema) => {
      const store = await open(schema);
      try {
        for (const name of ['b', 'a', 'c']) await store.repositories.create(name, {}, new Date());
        assert.deepEqual(await store.repositories.list({ limit: Number.MAX_SAFE_INTEGER }), ['a', 'b', 'c']);
        assert.deepEqual(await store.repositories.list({ last: 'a', limit: -1 }), ['b', 'c']);
        assert.deepEqual(await store.repositories.list({ limit: 0 }), []);
      } finally {
        await store.close();
      }
    });
  });

  it('does not put the password of the URL in its errors', async () => {
    await assert.rejects(PostgresMetadataStore.open({ url: 'not a url s3cr3t', schema: 'x' }), (err: Error) => !err.message.includes('s3cr3t'));
    const url = new URL(POSTGRES_URL);
    url.password = 's3cr3t-password';
    url.pathname = '/no_such_database_for_cistern';
    await requirePostgres();
    await assert.rejects(PostgresMetadataStore.open({ url: url.toString(), schema: 'x' }), (err: Error) => {
      assert.match(err.message, /no_such_database_for_cistern/);
      assert.doesNotMatch(err.message, /s3cr3t/);
      return true;
    });
  });
});
