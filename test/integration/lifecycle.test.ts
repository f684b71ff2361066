import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECRClient, StartLifecyclePolicyPreviewCommand, GetLifecyclePolicyPreviewCommand, GetLifecyclePolicyCommand } from '@aws-sdk/client-ecr';
import { openMetadata, startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pull } from '../helpers/pull.ts';
import { buildImage, buildIndex, type BuiltImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const DAY = 86_400_000;
const KEEP_3 = { rules: [{ rulePriority: 1, description: 'keep the 3 newest images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 }, action: { type: 'expire' } }] };

describe('lifecycle policies on cached repositories', () => {
  let upstream: FakeUpstream;
  let cistern: TestCistern;
  let clock = Date.parse('2026-11-01T00:00:00Z');
  const images: BuiltImage[] = ['1.0', '1.1', '1.2', '1.3', '1.4'].map((tag) => buildImage({ seed: `lifecycle-${tag}`, layers: [{ size: 3000, compress: false }] }));

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'none' });
    images.forEach((image, i) => upstream.addImage('library/app', `1.${i}`, image));
    cistern = await startCistern(
      {
        registries: { hub: { registry: upstream.url, kind: 'docker-hub' } },
        templates: { hub: { lifecyclePolicy: KEEP_3 } },
      },
      undefined,
      () => new Date(clock),
    );
  });
  after(async () => {
    await cistern.stop();
    await upstream.stop();
  });

  it('pulls 5 tags through the keep-3 template; a run keeps exactly the 3 newest', async () => {
    for (let i = 0; i < 5; i++) {
      await pull(cistern.url, 'hub/app', `1.${i}`);
      clock += DAY;
    }
    const dry = await cistern.app.lifecycle.run({ dryRun: true });
    assert.deepEqual(dry.find((r) => r.repository === 'hub/app')!.expired.map((e) => e.tags), [['1.0'], ['1.1']]);
    assert.equal((await (await fetch(`${cistern.url}/v2/hub/app/tags/list`)).json() as { tags: string[] }).tags.length, 5, 'a dry run changes nothing');

    const [report] = await cistern.app.lifecycle.run({ repository: 'hub/app' });
    assert.deepEqual(report!.expired.map((e) => e.digest), [images[0]!.manifestDigest, images[1]!.manifestDigest]);
    assert.ok(report!.expired.every((e) => e.appliedRulePriority === 1));
    const tags = (await (await fetch(`${cistern.url}/v2/hub/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['1.2', '1.3', '1.4']);
    for (let i = 2; i < 5; i++) assert.equal((await pull(cistern.url, 'hub/app', `1.${i}`)).digest, images[i]!.manifestDigest);
    assert.equal((await fetch(`${cistern.url}/v2/hub/app/manifests/${images[0]!.manifestDigest}`, { method: 'HEAD' })).status, 200, 'by digest, an expired image is fetched again like any cold pull');
    const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
    assert.match(metrics, /cistern_lifecycle_images_expired_total 2/);
  });

  it('expires an index together with its platform manifests', async () => {
    const platforms = ['amd64', 'arm64'].map((architecture) => buildImage({ seed: `lc-${architecture}`, layers: [{ size: 500, compress: false }], platform: { os: 'linux', architecture } }));
    const index = buildIndex(platforms);
    upstream.addIndex('library/multi', 'old', index);
    for (const tag of ['n1', 'n2', 'n3']) upstream.addImage('library/multi', tag, buildImage({ seed: `lc-${tag}`, layers: [{ size: 500, compress: false }] }));
    await pull(cistern.url, 'hub/multi', 'old');
    for (const p of platforms) await pull(cistern.url, 'hub/multi', p.manifestDigest);
    for (const tag of ['n1', 'n2', 'n3']) {
      clock += DAY;
      await pull(cistern.url, 'hub/multi', tag);
    }
    const [report] = await cistern.app.lifecycle.run({ repository: 'hub/multi' });
    assert.deepEqual(report!.expired.map((e) => e.digest), [index.manifestDigest]);
    upstream.reset();
    for (const digest of [index.manifestDigest, ...platforms.map((p) => p.manifestDigest)]) {
      const db = await openMetadata(cistern);
      try {
        assert.equal(await db.manifests.get('hub/multi', digest as never), undefined, `${digest} is gone`);
      } finally {
        await db.close();
      }
    }
  });

  it('previews a policy through the ECR API with the same evaluator', async () => {
    clock = Date.now(); // the SDK signs with the real clock
    await cistern.app.identities.createUser('ops', [{ Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: '*' }] }]);
    const key = await cistern.app.identities.createKey('ops');
    const ecr = new ECRClient({ endpoint: cistern.url, region: 'us-east-1', credentials: key, maxAttempts: 1 });
    try {
      const keepOne = JSON.stringify({ rules: [{ rulePriority: 7, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] });
      const started = await ecr.send(new StartLifecyclePolicyPreviewCommand({ repositoryName: 'hub/app', lifecyclePolicyText: keepOne }));
      assert.equal(started.status, 'IN_PROGRESS');
      const preview = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName: 'hub/app' }));
      assert.equal(preview.status, 'COMPLETE');
      assert.equal(preview.summary!.expiringImageTotalCount, preview.previewResults!.length);
      // The image re-fetched by digest in the first test is the newest: keep-1 keeps it and expires the three tags.
      assert.deepEqual(preview.previewResults!.map((r) => r.imageTags?.[0]).sort(), ['1.2', '1.3', '1.4']);
      assert.ok(preview.previewResults!.every((r) => r.appliedRulePriority === 7 && r.action!.type === 'EXPIRE'));
      assert.equal(((await (await fetch(`${cistern.url}/v2/hub/app/tags/list`)).json()) as { tags: string[] }).tags.length, 3, 'a preview changes nothing');
      const policy = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'hub/app' }));
      assert.ok(policy.lastEvaluatedAt instanceof Date, 'the runs above are recorded');
    } finally {
      ecr.destroy();
    }
  });
});

describe('lifecycle run from the command line, beside a running server', () => {
  it('the server stops serving what the CLI expired, though it held it in memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cistern-lifecycle-cli-'));
    const upstream = await startFakeUpstream({ auth: 'none' });
    const images = [0, 1, 2, 3].map((i) => buildImage({ seed: `lifecycle-cli-${i}`, layers: [{ size: 2000, compress: false }] }));
    images.forEach((image, i) => upstream.addImage('library/app', `v${i}`, image));
    const settings = { registries: { hub: { registry: upstream.url, kind: 'docker-hub' } }, templates: { hub: { lifecyclePolicy: KEEP_3 } } };
    let clock = Date.parse('2026-11-01T00:00:00Z');
    const cistern = await startCistern(settings, dir, () => new Date(clock));
    try {
      for (let i = 0; i < 4; i++) {
        await pull(cistern.url, 'hub/app', `v${i}`);
        clock += DAY;
      }
      await cistern.app.local.flushPulls();
      const config = join(dir, 'cli.yaml');
      await writeFile(config, JSON.stringify({ storage: cistern.config.storage, auth: { enabled: false }, ...settings }));
      const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'lifecycle', 'run', '--config', config], { encoding: 'utf8' });
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(`expired hub/app@${images[0]!.manifestDigest}`));

      await new Promise((resolve) => setTimeout(resolve, 600));
      upstream.reset();
      const tags = (await (await fetch(`${cistern.url}/v2/hub/app/tags/list`)).json()) as { tags: string[] };
      assert.deepEqual(tags.tags, ['v1', 'v2', 'v3']);
      // v0 was in the server's memory; now it is a cold tag again, so the pull goes upstream.
      assert.equal((await pull(cistern.url, 'hub/app', 'v0')).digest, images[0]!.manifestDigest);
      assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 1);
      assert.equal((await pull(cistern.url, 'hub/app', 'v3')).digest, images[3]!.manifestDigest);
      // (Days have passed on the server's clock, so v3 is revalidated with a HEAD, but not fetched again.)
      assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 1, 'the images kept are still served from the cache');
    } finally {
      await cistern.stop();
      await upstream.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
