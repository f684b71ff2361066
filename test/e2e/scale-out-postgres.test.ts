/**
 * Two Cistern instances on one PostgreSQL metadata store and one blob directory, as a scaled-out
 * deployment runs them behind a load balancer: what one pushes or caches the other serves, and what one
 * deletes the other stops serving within a second, though it held it in memory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import pg from 'pg';
import { blob, pushBlob, pushImage } from '../helpers/oci.ts';
import { PostgresMetadataStore } from '../../src/storage/metadata/postgres/postgres-metadata-store.ts';
import { pull } from '../helpers/pull.ts';
import { dropSchema, freshSchema, POSTGRES_URL, requirePostgres } from '../helpers/postgres.ts';
import { buildImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';


async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

describe('scale-out: two instances sharing PostgreSQL and a blob directory', { timeout: 120_000 }, () => {
  const schema = freshSchema();
  let dir: string;
  let upstream: FakeUpstream;
  let a: TestCistern;
  let b: TestCistern;
  const cached = buildImage({ seed: 'scale-out-cached', layers: [{ size: 300_000, compress: false }] });

  before(async () => {
    await requirePostgres();
    dir = await mkdtemp(join(tmpdir(), 'cistern-scale-out-'));
    upstream = await startFakeUpstream({ auth: 'none' });
    upstream.addImage('library/cached', 'v1', cached);
    const settings = {
      storage: { directory: dir, metadata: { driver: 'postgres', url: POSTGRES_URL, schema } },
      registries: { hub: { registry: upstream.url, kind: 'docker-hub' } },
    };
    // Started together, as a deployment's replicas are: migrations must not race.
    [a, b] = await Promise.all([startCistern(settings, dir), startCistern(settings, dir)]);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await upstream?.stop();
    await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it('what one instance has pushed, the other serves', async () => {
    const pushed = await pushImage(a.url, 'team/app', 'v1', 'scale-out/app');
    const fromB = await pull(b.url, 'team/app', 'v1');
    assert.equal(fromB.digest, pushed.digest);
    assert.equal(fromB.blobs.length, 3);
  });

  it('what one instance has cached, the other serves without asking upstream', async () => {
    assert.equal((await pull(a.url, 'hub/cached', 'v1')).digest, cached.manifestDigest);
    await a.app.registry.settle();
    upstream.reset();
    assert.equal((await pull(b.url, 'hub/cached', 'v1')).digest, cached.manifestDigest);
    assert.equal(upstream.requests.length, 0);
  });

  it('concurrent cold pulls through both instances cost upstream one manifest GET, not one per instance', async () => {
    const image = buildImage({ seed: 'scale-out-herd', layers: [{ size: 50_000, compress: false }] });
    upstream.addImage('library/herd', 'v1', image);
    upstream.reset();
    // Slow answers, so that both instances are asking at the same time.
    const slow = upstream.fault({ kind: 'manifest' }, { type: 'slow', headersDelayMs: 300 });
    const pulls = Array.from({ length: 10 }, (_, i) => pull(i % 2 === 0 ? a.url : b.url, 'hub/herd', 'v1'));
    for (const pulled of await Promise.all(pulls)) assert.equal(pulled.digest, image.manifestDigest);
    slow.clear();
    assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 1);
    assert.equal(upstream.count({ kind: 'manifest', method: 'HEAD' }), 0);
  });

  it('forgets only the repositories another instance changed', async () => {
    await pushImage(a.url, 'team/one', 'v1', 'scale-out/one');
    await pushImage(a.url, 'team/two', 'v1', 'scale-out/two');
    for (const repo of ['team/one', 'team/two']) assert.equal((await fetch(`${b.url}/v2/${repo}/manifests/v1`)).status, 200); // in b's memory
    // team/two's tag disappears behind everyone's back (no notice: triggers off for this session)...
    const quiet = new pg.Client({ connectionString: POSTGRES_URL });
    await quiet.connect();
    try {
      await quiet.query("SET session_replication_role = replica");
      await quiet.query(`DELETE FROM "${schema}".tags t USING "${schema}".repositories r WHERE r.id = t.repository_id AND r.name = 'team/two'`);
    } finally {
      await quiet.end();
    }
    // ...and team/one's through a, which tells b.
    assert.equal((await fetch(`${a.url}/v2/team/one/manifests/v1`, { method: 'DELETE' })).status, 202);
    const gone = await within(1000, async () => (await fetch(`${b.url}/v2/team/one/manifests/v1`)).status === 404);
    assert.ok(gone, 'b forgot the repository a changed');
    assert.equal((await fetch(`${b.url}/v2/team/two/manifests/v1`)).status, 200, 'and only that one: team/two is still held in memory');
  });

  it('exports its PostgreSQL connection pools as metrics', async () => {
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    const total = /cistern_metadata_connections\{pool="queries",state="total"\} (\d+)/.exec(metrics);
    assert.ok(total && Number(total[1]) >= 1, 'the queries pool has connections open');
    assert.match(metrics, /cistern_metadata_connections\{pool="locks",state="waiting"\} 0/);
  });

  it('what one instance deletes, the other stops serving within a second', async () => {
    await pushImage(a.url, 'team/gone', 'v1', 'scale-out/gone');
    await pull(b.url, 'team/gone', 'v1'); // now in b's memory
    const deleted = await fetch(`${a.url}/v2/team/gone/manifests/v1`, { method: 'DELETE' });
    assert.equal(deleted.status, 202);
    const gone = await within(1000, async () => (await fetch(`${b.url}/v2/team/gone/manifests/v1`)).status === 404);
    assert.ok(gone, 'b still serves a tag a deleted');
  });
});

describe('scale-out: garbage collection on one instance and pushes on another', { timeout: 60_000 }, () => {
  const schema = freshSchema();
  let dir: string;
  let a: TestCistern;
  let b: TestCistern;
  let holder: PostgresMetadataStore;
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cistern-scale-out-gc-'));
    const settings = { storage: { directory: dir, metadata: { driver: 'postgres', url: POSTGRES_URL, schema } } };
    [a, b] = await Promise.all([startCistern(settings, dir, clock), startCistern(settings, dir, clock)]);
    holder = await PostgresMetadataStore.open({ url: POSTGRES_URL, schema });
  });
  after(async () => {
    await holder?.close();
    await a?.stop();
    await b?.stop();
    await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for a blob's lock held anywhere in the fleet before deleting it", async () => {
    const orphan = blob('scale-out/orphan', 4096);
    assert.equal((await pushBlob(b.url, 'team/orphan', orphan)).status, 201);
    const path = join(dir, 'blobs', 'sha256', orphan.digest.slice(7, 9), orphan.digest.slice(7));
    offset += 2 * 3_600_000; // past the grace period: nothing references the blob any more

    // Another instance is, say, committing and linking this very blob: it holds the blob's lock.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holding = holder.locks.with(`blob:${orphan.digest}`, async () => {
      entered();
      await held;
    });
    await inside;
    const collecting = a.app.gc.run();
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await stat(path); // still there: the collector waits for the lock
    } finally {
      release();
      await holding;
    }
    const report = await collecting;
    assert.equal(report.blobsDeleted, 1);
    await assert.rejects(stat(path));
  });
});
