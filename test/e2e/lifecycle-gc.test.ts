/**
 * Lifecycle and garbage collection end to end: CNCF Distribution as the upstream, skopeo pulling five
 * tags through a cache prefix whose creation template carries the seed's keep-3 policy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type RunningRegistry } from '../fixtures/distribution.ts';
import { buildImage, buildLayer, pushImage, type BuiltImage } from '../fixtures/image-builder.ts';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { skopeo } from '../helpers/skopeo.ts';

const KEEP_3 = { rules: [{ rulePriority: 1, description: 'Keep only the 3 most recent images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 }, action: { type: 'expire' } }] };

function blobsOnDisk(directory: string): Set<string> {
  const root = join(directory, 'blobs', 'sha256');
  return new Set(readdirSync(root).flatMap((prefix) => readdirSync(join(root, prefix)).map((hex) => `sha256:${hex}`)));
}

describe('keep-3 through a cache prefix, then garbage collection', { timeout: 300_000 }, () => {
  let upstream: RunningRegistry;
  let cistern: TestCistern;
  let work: string;
  // Real time plus an offset: garbage collection compares with real file times.
  let offset = 0;
  const shared = buildLayer({ seed: 'lc-e2e-shared', size: 200_000 });
  const images: BuiltImage[] = [0, 1, 2, 3, 4].map((i) => buildImage({ seed: `lc-e2e-${i}`, layers: [shared, { size: 50_000 + i }] }));

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'cistern-lc-e2e-'));
    upstream = await startDistribution();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, 'team/app', `1.${i}`, image);
    cistern = await startCistern(
      { registries: { up: { registry: upstream.url } }, templates: { up: { lifecyclePolicy: KEEP_3 } }, gc: { grace: '1m' } },
      undefined,
      () => new Date(Date.now() + offset),
    );
  });
  after(async () => {
    await cistern?.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('keeps exactly the 3 newest, reclaims the expired images\' own blobs and keeps the shared one', async () => {
    for (let i = 0; i < 5; i++) {
      await skopeo('copy', '--src-tls-verify=false', `docker://${cistern.host}/up/team/app:1.${i}`, `oci:${join(work, `pull-${i}`)}:x`);
      offset += 60 * 60_000;
    }
    const [report] = await cistern.app.lifecycle.run({ repository: 'up/team/app' });
    assert.deepEqual(report!.expired.map((e) => e.tags), [['1.0'], ['1.1']]);
    const tags = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${cistern.host}/up/team/app`)) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['1.2', '1.3', '1.4']);

    offset += 2 * 60 * 60_000;
    const gc = await cistern.app.gc.run();
    const onDisk = blobsOnDisk(cistern.directory);
    for (const expired of images.slice(0, 2)) {
      assert.ok(!onDisk.has(expired.layers[1]!.digest), 'an expired image\'s own layer is reclaimed');
      assert.ok(!onDisk.has(expired.config.digest));
    }
    assert.ok(onDisk.has(shared.digest), 'the layer the kept images share stays');
    assert.ok(gc.blobsDeleted >= 4);
    await upstream.stop();
    for (let i = 2; i < 5; i++) {
      const dir = join(work, `again-${i}`);
      await skopeo('copy', '--src-tls-verify=false', `docker://${cistern.host}/up/team/app:1.${i}`, `oci:${dir}:x`);
    }
  });
});
