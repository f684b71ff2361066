import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pull } from '../helpers/pull.ts';
import { pushImage } from '../helpers/oci.ts';
import { buildImage, type BuiltImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const HOUR = 3_600_000;

describe('storage budgets and eviction by use', () => {
  let upstream: FakeUpstream;
  let cistern: TestCistern;
  // Starts at the real time: garbage collection compares against real file times.
  let clock = Date.now();
  const images: BuiltImage[] = [1, 2, 3, 4].map((n) => buildImage({ seed: `budget-${n}`, layers: [{ size: 100_000, compress: false }] }));
  const stale = buildImage({ seed: 'unused', layers: [{ size: 1000, compress: false }] });

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'none' });
    images.forEach((image, i) => upstream.addImage('library/app', `v${i + 1}`, image));
    upstream.addImage('library/old', 'v1', stale);
    cistern = await startCistern(
      {
        registries: {
          hub: { registry: upstream.url, kind: 'docker-hub', maxBytes: '250KB' },
          archive: { registry: upstream.url, kind: 'docker-hub', evictAfterUnusedDays: 1 },
        },
        storageBudget: { protectPulledWithin: '1h' },
        gc: { grace: '1m' },
      },
      undefined,
      () => new Date(clock),
    );
  });
  after(async () => {
    await cistern.stop();
    await upstream.stop();
  });

  it('evicts the least recently pulled cached images until the rule fits, never pushed or recently pulled ones', async () => {
    const mine = await pushImage(cistern.url, 'mine/app', 'v1', 'pushed-big', [300_000]);
    for (const n of [1, 2, 3, 4]) {
      await pull(cistern.url, 'hub/app', `v${n}`);
      clock += HOUR;
    }
    await pull(cistern.url, 'hub/app', 'v1'); // v1 is now more recent than v2 and v4
    clock += 5 * HOUR;
    await pull(cistern.url, 'hub/app', 'v3'); // protected: pulled within the hour
    clock += 10 * 60_000;
    await cistern.app.registry.settle(); // blobs are linked a moment after the client has them

    const report = await cistern.app.evictor.run();
    assert.deepEqual(
      report.evicted.map((e) => [e.tags.join(), e.reason]),
      [['v2', 'rule-budget'], ['v4', 'rule-budget']],
    );
    assert.ok(report.bytesReclaimed >= 200_000, `reclaimed ${report.bytesReclaimed}`);
    const tags = ((await (await fetch(`${cistern.url}/v2/hub/app/tags/list`)).json()) as { tags: string[] }).tags;
    assert.deepEqual(tags, ['v1', 'v3']);
    upstream.reset();
    for (const tag of ['v1', 'v3']) await pull(cistern.url, 'hub/app', tag);
    // v1's tag is past its freshness window, so a HEAD revalidates it; nothing is fetched again.
    assert.deepEqual(upstream.requests.filter((r) => r.method === 'GET').map((r) => `${r.host} ${r.path}`), [], 'what stayed is whole and served locally');
    assert.equal((await pull(cistern.url, 'mine/app', 'v1')).digest, mine.digest, 'pushed repositories are never evicted');
    await pull(cistern.url, 'hub/app', 'v2');
    assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 1, 'an evicted image comes back on the next pull');
    const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
    assert.match(metrics, /cistern_cache_images_evicted_total\{rule="hub"\} 2/);
    assert.match(metrics, /cistern_store_bytes\{rule="hub"\} \d+/);
  });

  it('evicts images unused for evictAfterUnusedDays', async () => {
    await pull(cistern.url, 'archive/old', 'v1');
    clock += 2 * 24 * HOUR;
    const report = await cistern.app.evictor.run();
    assert.ok(report.evicted.some((e) => e.repository === 'archive/old' && e.reason === 'unused'));
    assert.equal((await fetch(`${cistern.url}/v2/archive/old/tags/list`).then((r) => r.json()) as { tags: string[] }).tags.length, 0);
  });
});
