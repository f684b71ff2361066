import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startCistern } from '../helpers/cistern.ts';
import { blob, imageManifest, pushBlob, putManifest } from '../helpers/oci.ts';

const HOUR = 3_600_000;

async function blobFiles(directory: string): Promise<string[]> {
  const root = join(directory, 'blobs', 'sha256');
  const out: string[] = [];
  for (const prefix of await readdir(root).catch(() => [])) for (const hex of await readdir(join(root, prefix))) out.push(`sha256:${hex}`);
  return out.sort();
}

describe('garbage collection', () => {
  it('collects blobs no manifest uses once past the grace period, keeps the rest, and a dry run changes nothing', async () => {
    // Starts at the real time: blob files carry real modification times.
    let clock = Date.now();
    const cistern = await startCistern({ gc: { grace: '1h', interval: '24h' } }, undefined, () => new Date(clock));
    try {
      const shared = blob('gc/shared', 5000);
      const only = blob('gc/only-a', 7000);
      const config = blob('gc/config', 100);
      const orphan = blob('gc/orphan', 3000);
      for (const b of [shared, only, config]) await pushBlob(cistern.url, 'gc/a', b);
      await pushBlob(cistern.url, 'gc/b', shared);
      await pushBlob(cistern.url, 'gc/b', config);
      await pushBlob(cistern.url, 'gc/c', orphan);
      const a = imageManifest(config, [shared, only]);
      const b = imageManifest(config, [shared]);
      assert.equal((await putManifest(cistern.url, 'gc/a', 'v1', a)).status, 201);
      assert.equal((await putManifest(cistern.url, 'gc/b', 'v1', b)).status, 201);

      const young = await cistern.app.gc.run();
      assert.equal(young.blobsDeleted, 0, 'nothing is collected inside the grace period');

      clock += 2 * HOUR;
      const before = await blobFiles(cistern.directory);
      const dry = await cistern.app.gc.run({ dryRun: true });
      assert.deepEqual(await blobFiles(cistern.directory), before);
      assert.equal(dry.blobsDeleted, 1);
      assert.equal(dry.bytesReclaimed, orphan.size);

      const first = await cistern.app.gc.run();
      assert.deepEqual([first.blobsDeleted, first.bytesReclaimed, first.linksRemoved], [1, orphan.size, 1]);
      assert.deepEqual(await blobFiles(cistern.directory), [shared.digest, only.digest, config.digest].sort());

      // Deleting gc/a's manifest frees its unique layer but not the layer gc/b shares.
      assert.equal((await fetch(`${cistern.url}/v2/gc/a/manifests/${a.digest}`, { method: 'DELETE' })).status, 202);
      const second = await cistern.app.gc.run();
      assert.equal(second.blobsDeleted, 1);
      assert.deepEqual(await blobFiles(cistern.directory), [shared.digest, config.digest].sort());
      for (const d of [shared, config]) assert.equal((await fetch(`${cistern.url}/v2/gc/b/blobs/${d.digest}`, { method: 'HEAD' })).status, 200);
      const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
      assert.match(metrics, new RegExp(`cistern_gc_bytes_reclaimed_total ${orphan.size + only.size}`));
    } finally {
      await cistern.stop();
    }
  });

  it('races: GC running while 20 clients push and pull images that share layers leaves every manifest whole', async () => {
    const cistern = await startCistern({ gc: { grace: '2s', interval: '24h' } });
    try {
      const base = blob('race/base', 64 * 1024);
      const runtimes = [0, 1, 2].map((i) => blob(`race/runtime-${i}`, 32 * 1024));
      let stop = false;
      let runs = 0;
      const collector = (async () => {
        while (!stop) {
          await cistern.app.gc.run();
          runs++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const pushed: { repo: string; tag: string; digest: string }[] = [];
      await Promise.all(
        Array.from({ length: 20 }, async (_, client) => {
          for (let round = 0; round < 5; round++) {
            const repo = `race/app${client % 4}`;
            const unique = blob(`race/c${client}/r${round}`, 16 * 1024);
            const config = blob(`race/config/c${client}/r${round}`, 200);
            for (const b of [base, runtimes[round % 3]!, unique, config]) await pushBlob(cistern.url, repo, b);
            const manifest = imageManifest(config, [base, runtimes[round % 3]!, unique]);
            const tag = `c${client}-r${round}`;
            const res = await putManifest(cistern.url, repo, tag, manifest);
            assert.equal(res.status, 201, await res.text());
            pushed.push({ repo, tag, digest: manifest.digest });
            // Pull something another client pushed.
            const other = pushed[Math.floor(pushed.length / 2)]!;
            assert.equal((await fetch(`${cistern.url}/v2/${other.repo}/manifests/${other.tag}`, { method: 'HEAD' })).status, 200);
          }
        }),
      );
      stop = true;
      await collector;
      assert.ok(runs > 3, `GC ran ${runs} times during the pushes`);

      // Every manifest that exists is fully pullable and every blob verifies.
      const live = new Set<string>();
      for (const { repo, tag } of pushed) {
        const res = await fetch(`${cistern.url}/v2/${repo}/manifests/${tag}`);
        const manifest = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
        for (const { digest } of [manifest.config, ...manifest.layers]) {
          live.add(digest);
          const got = await fetch(`${cistern.url}/v2/${repo}/blobs/${digest}`);
          assert.equal(got.status, 200, `${repo}:${tag} lost ${digest}`);
          assert.equal(`sha256:${createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex')}`, digest);
        }
      }
      // And only truly unreferenced blobs are gone: after the grace period nothing live is collected.
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const report = await cistern.app.gc.run();
      assert.equal(report.blobsDeleted, 0, 'every blob left is referenced');
      assert.deepEqual(await blobFiles(cistern.directory), [...live].sort());
    } finally {
      await cistern.stop();
    }
  });
});
