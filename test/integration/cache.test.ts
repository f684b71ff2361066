import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dumpMetadata, openMetadata, startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pull } from '../helpers/pull.ts';
import { buildImage, buildIndex, type BuiltImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const USER = 'cacheuser';
const PASSWORD = 'hunter2-very-secret-token';
const HOUR = 3_600_000;

function image(seed: string, sizes = [40_000, 300_000]): BuiltImage {
  return buildImage({ seed, layers: sizes.map((size) => ({ size, compress: false })) });
}

describe('pull-through cache', () => {
  let upstream: FakeUpstream;
  let cistern: TestCistern;
  let clock = Date.parse('2026-12-01T00:00:00Z');
  const nginx = image('nginx-1.27');

  before(async () => {
    upstream = await startFakeUpstream({ users: { [USER]: PASSWORD }, anonymous: false, rateLimit: { limit: 100, windowSeconds: 21600 }, now: () => clock });
    upstream.addImage('library/nginx', '1.27', nginx);
  });
  after(() => upstream.stop());

  beforeEach(async () => {
    upstream.reset();
    upstream.clearFaults();
    cistern = await startCistern(
      {
        registries: {
          dockerhub: { registry: upstream.url, kind: 'docker-hub', username: USER, accessToken: PASSWORD, freshness: '1h' },
          mapped: { registry: upstream.url, upstreamPrefix: 'library', username: USER, accessToken: PASSWORD },
        },
        templates: {
          dockerhub: { lifecyclePolicy: { rules: [{ rulePriority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 }, action: { type: 'expire' } }] }, scanOnPull: true, resourceTags: { team: 'platform' } },
        },
        pullThrough: { retries: 1, retryBaseDelay: '1ms' },
      },
      undefined,
      () => new Date(clock),
    );
  });
  afterEach(() => cistern.stop());

  const count = (filter: Parameters<FakeUpstream['count']>[0]) => upstream.count(filter);

  it('maps dockerhub/nginx to library/nginx, fetches once, then serves from the cache', async () => {
    const first = await pull(cistern.url, 'dockerhub/nginx', '1.27');
    assert.equal(first.digest, nginx.manifestDigest);
    assert.equal(count({ kind: 'manifest', method: 'GET' }), 1);
    assert.equal(count({ host: 'cdn' }), first.blobs.length);
    assert.equal(upstream.count((r) => r.host === 'cdn' && r.authorization), 0, 'credentials never go to the blob CDN');
    upstream.reset();
    await pull(cistern.url, 'dockerhub/nginx', '1.27');
    await pull(cistern.url, 'dockerhub/library/nginx', '1.27').catch(() => undefined);
    await pull(cistern.url, 'dockerhub/nginx', nginx.manifestDigest);
    assert.equal(count({ repo: 'library/nginx', kind: 'manifest' }), 1, 'only the nested name was new');
    assert.equal(count({ host: 'cdn' }), 0, 'blobs of the nested name came from the store (same digests)');
  });

  it('50 concurrent cold pulls make one upstream GET per manifest and per blob', async () => {
    const pulls = await Promise.all(Array.from({ length: 50 }, () => pull(cistern.url, 'dockerhub/nginx', '1.27')));
    assert.ok(pulls.every((p) => p.digest === nginx.manifestDigest));
    assert.equal(count({ kind: 'manifest', method: 'GET' }), 1);
    assert.equal(count({ host: 'cdn', method: 'GET' }), 1 + nginx.layers.length);
  });

  it('1,000 re-pulls inside the freshness window reach upstream zero times; after it, one HEAD', async () => {
    await pull(cistern.url, 'dockerhub/nginx', '1.27');
    upstream.reset();
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${cistern.url}/v2/dockerhub/nginx/manifests/1.27`, { method: i % 2 ? 'GET' : 'HEAD' });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    assert.equal(upstream.requests.length, 0);
    clock += 2 * HOUR;
    await pull(cistern.url, 'dockerhub/nginx', '1.27');
    assert.equal(count({ kind: 'manifest', method: 'HEAD' }), 1);
    assert.equal(count({ kind: 'manifest', method: 'GET' }), 0);
    assert.equal(count({ host: 'cdn' }), 0);
  });

  it('a tag that moved upstream is fetched anew after the window', async () => {
    await pull(cistern.url, 'dockerhub/nginx', 'moving').catch(() => undefined);
    const v1 = image('moving-1');
    const v2 = image('moving-2');
    upstream.addImage('library/nginx', 'moving', v1);
    assert.equal((await pull(cistern.url, 'dockerhub/nginx', 'moving')).digest, v1.manifestDigest);
    upstream.addImage('library/nginx', 'moving', v2);
    assert.equal((await pull(cistern.url, 'dockerhub/nginx', 'moving')).digest, v1.manifestDigest, 'inside the window');
    clock += 2 * HOUR;
    assert.equal((await pull(cistern.url, 'dockerhub/nginx', 'moving')).digest, v2.manifestDigest);
    // The old image stays pullable by digest.
    assert.equal((await pull(cistern.url, 'dockerhub/nginx', v1.manifestDigest)).digest, v1.manifestDigest);
  });

  for (const [name, fault] of [
    ['a 500', { type: 'status', status: 500 }],
    ['a 503', { type: 'status', status: 503 }],
    ['a 429', { type: 'status', status: 429, retryAfter: 60 }],
    ['a dropped connection', { type: 'down' }],
    ['refused credentials', { type: 'refuse-credentials' }],
  ] as const) {
    it(`serves stale content when upstream answers ${name}`, async () => {
      const img = image(`stale-${name}`);
      upstream.addImage('library/stale', name.replace(/\W/g, ''), img);
      const tag = name.replace(/\W/g, '');
      await pull(cistern.url, 'dockerhub/stale', tag);
      clock += 2 * HOUR;
      upstream.revokeTokens();
      upstream.fault({}, fault as never);
      const again = await pull(cistern.url, 'dockerhub/stale', tag);
      assert.equal(again.digest, img.manifestDigest);
      assert.ok(cistern.logs.some((l) => l.msg === 'serving cached manifest without revalidation'));
      const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
      assert.match(metrics, /cistern_cache_stale_serves_total\{rule="dockerhub",reason="[a-z-]+"\} 1/);
    });
  }

  it('with nothing cached, a 429 becomes TOOMANYREQUESTS carrying Retry-After, a 500 an error naming the upstream', async () => {
    upstream.fault({ kind: 'manifest', times: 1 }, { type: 'status', status: 429, retryAfter: 120 });
    const limited = await fetch(`${cistern.url}/v2/dockerhub/nginx/manifests/cold-1`);
    assert.equal(limited.status, 429);
    const body = (await limited.json()) as { errors: { code: string; message: string; detail: { retryAfterSeconds: number } }[] };
    assert.equal(body.errors[0]!.code, 'TOOMANYREQUESTS');
    assert.equal(body.errors[0]!.detail.retryAfterSeconds, 120);
    // Honoured: no further upstream request until Retry-After has passed.
    upstream.reset();
    assert.equal((await fetch(`${cistern.url}/v2/dockerhub/nginx/manifests/cold-2`)).status, 429);
    assert.equal(upstream.requests.length, 0);
    clock += 121_000;

    upstream.fault({ kind: 'manifest' }, { type: 'status', status: 500 });
    const broken = await fetch(`${cistern.url}/v2/dockerhub/nginx/manifests/cold-3`);
    assert.equal(broken.status, 502);
    const error = (await broken.json()) as { errors: { code: string; message: string }[] };
    assert.equal(error.errors[0]!.code, 'UNAVAILABLE');
    assert.match(error.errors[0]!.message, /upstream dockerhub failed: answered 500/);
    assert.equal(count({ kind: 'manifest', method: 'GET' }), 2, 'one retry, then give up');
  });

  it('gives up on an upstream that does not answer within the headers timeout', async () => {
    await cistern.stop();
    cistern = await startCistern({
      registries: { dockerhub: { registry: upstream.url, kind: 'docker-hub', username: USER, accessToken: PASSWORD } },
      pullThrough: { retries: 0, headersTimeout: '200ms' },
    });
    upstream.fault({ kind: 'manifest' }, { type: 'slow', headersDelayMs: 2000 });
    const res = await fetch(`${cistern.url}/v2/dockerhub/nginx/manifests/1.27`);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /upstream dockerhub failed: timed out/);
  });

  it('pulls a cold image by digest (ECR cannot)', async () => {
    const byDigest = await pull(cistern.url, 'dockerhub/nginx', nginx.manifestDigest);
    assert.equal(byDigest.digest, nginx.manifestDigest);
  });

  it('never serves a corrupt blob twice nor keeps it', async () => {
    const img = image('corrupt', [200_000]);
    upstream.addImage('library/corrupt', 'v1', img);
    const layer = img.layers[0]!.digest;
    upstream.fault({ digest: layer, host: 'cdn', times: 2 }, { type: 'corrupt' });
    // The first client gets the bytes as they stream, and a broken transfer when verification fails.
    await assert.rejects(pull(cistern.url, 'dockerhub/corrupt', 'v1'));
    await cistern.app.registry.settle();
    await assert.rejects(stat(join(cistern.directory, 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7))), 'not kept');
    // Upstream is still corrupt: now the blob is verified before a byte goes out, and the client gets an error.
    const second = await fetch(`${cistern.url}/v2/dockerhub/corrupt/blobs/${layer}`);
    assert.equal(second.status, 502);
    assert.match(await second.text(), /do not match their digest/);
    await assert.rejects(stat(join(cistern.directory, 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7))), 'still not kept');
    const good = await pull(cistern.url, 'dockerhub/corrupt', 'v1');
    assert.equal(good.blobs.length, 2);
    assert.equal(upstream.count({ host: 'cdn', digest: layer }), 3);
  });

  it('resumes a fill that upstream dropped, with a Range request', async () => {
    const img = image('dropped', [2_000_000]);
    upstream.addImage('library/dropped', 'v1', img);
    const layer = img.layers[0]!.digest;
    upstream.fault({ digest: layer, host: 'cdn', times: 1 }, { type: 'drop', afterBytes: 700_000 });
    await pull(cistern.url, 'dockerhub/dropped', 'v1');
    const cdn = upstream.requests.filter((r) => r.host === 'cdn' && r.digest === layer);
    assert.equal(cdn.length, 2);
    assert.match(String(cdn[1]!.headers.range), /^bytes=\d+-$/);
  });

  it('a client that disconnects mid-fill does not abort the fill', async () => {
    const img = image('disconnect', [3_000_000]);
    upstream.addImage('library/disconnect', 'v1', img);
    const layer = img.layers[0]!.digest;
    await fetch(`${cistern.url}/v2/dockerhub/disconnect/manifests/v1`);
    upstream.fault({ digest: layer, host: 'cdn' }, { type: 'slow', bytesPerSecond: 6_000_000 });
    const abort = new AbortController();
    const res = await fetch(`${cistern.url}/v2/dockerhub/disconnect/blobs/${layer}`, { signal: abort.signal });
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    upstream.clearFaults();
    for (let i = 0; i < 100 && !(await stat(join(cistern.directory, 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7))).catch(() => undefined)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    upstream.reset();
    await pull(cistern.url, 'dockerhub/disconnect', 'v1');
    assert.equal(count({ host: 'cdn', digest: layer }), 0, 'the fill finished and was kept');
  });

  it('answers containerd mirror requests (?ns=docker.io) under the rule', async () => {
    const mirrored = await pull(cistern.url, 'library/nginx', '1.27', '?ns=docker.io');
    assert.equal(mirrored.digest, nginx.manifestDigest);
    const unknown = await fetch(`${cistern.url}/v2/library/nginx/manifests/1.27?ns=quay.io`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NAME_UNKNOWN');
  });

  it('maps an upstream repository prefix (mapped/x → library/x)', async () => {
    assert.equal((await pull(cistern.url, 'mapped/nginx', '1.27')).digest, nginx.manifestDigest);
  });

  it('refuses pushes into a cache prefix with DENIED and says why', async () => {
    const res = await fetch(`${cistern.url}/v2/dockerhub/mine/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, /pull-through cache/);
  });

  it('caches a multi-arch index and fetches platform manifests when asked, each GET a counted pull', async () => {
    const amd = buildImage({ seed: 'multi-amd', layers: [{ size: 1000, compress: false }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = buildImage({ seed: 'multi-arm', layers: [{ size: 1000, compress: false }], platform: { os: 'linux', architecture: 'arm64' } });
    const index = buildIndex([amd, arm]);
    upstream.addIndex('library/multi', 'latest', index);
    const before = upstream.rateLimitRemaining(USER);
    const top = await pull(cistern.url, 'dockerhub/multi', 'latest');
    assert.equal(top.digest, index.manifestDigest);
    await pull(cistern.url, 'dockerhub/multi', arm.manifestDigest);
    assert.equal(count({ kind: 'manifest', method: 'GET' }), 2, 'the index and the one platform asked for');
    assert.equal(before - upstream.rateLimitRemaining(USER), 2);
  });

  it('creates the repository on first pull from the matching template', async () => {
    await pull(cistern.url, 'dockerhub/nginx', '1.27');
    const db = await openMetadata(cistern);
    try {
      const repo = await db.repositories.get('dockerhub/nginx');
      assert.equal(repo?.cacheRule, 'dockerhub');
      assert.equal(repo?.settings?.template, 'dockerhub');
      assert.equal(repo?.settings?.scanOnPush, true);
      assert.deepEqual(repo?.settings?.resourceTags, [{ Key: 'team', Value: 'platform' }]);
      assert.match(repo?.settings?.lifecyclePolicy ?? '', /imageCountMoreThan/);
    } finally {
      await db.close();
    }
  });

  it('keeps an image that upstream deleted pullable', async () => {
    const img = image('deleted-upstream');
    upstream.addImage('library/gone', 'v1', img);
    await pull(cistern.url, 'dockerhub/gone', 'v1');
    upstream.deleteManifest('library/gone', img.manifestDigest);
    clock += 2 * HOUR;
    assert.equal((await pull(cistern.url, 'dockerhub/gone', 'v1')).digest, img.manifestDigest);
  });

  it('keeps credentials out of logs, metrics and errors, and encrypted at rest', async () => {
    await pull(cistern.url, 'dockerhub/nginx', '1.27');
    upstream.fault({ host: 'token' }, { type: 'refuse-credentials' });
    upstream.revokeTokens();
    const refused = await fetch(`${cistern.url}/v2/dockerhub/other/manifests/x`);
    const errorBody = await refused.text();
    const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
    const logs = JSON.stringify(cistern.logs);
    const stored = await dumpMetadata(cistern);
    assert.match(stored, /ecr-pullthroughcache\/dockerhub/, 'the dump does hold the secret record');
    for (const [where, text] of [['error', errorBody], ['metrics', metrics], ['logs', logs], ['database', stored]]) {
      assert.ok(!text!.includes(PASSWORD), `password in ${where}`);
      assert.ok(!text!.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), `basic credential in ${where}`);
    }
    assert.match(errorBody, /refused our credentials/);
    const key = await stat(join(cistern.directory, 'secret.key'));
    assert.equal(key.mode & 0o777, 0o600);
  });
});

describe('pull-through cache: quota and Docker-style mirrors', () => {
  let upstream: FakeUpstream;
  let cistern: TestCistern;
  let clock = Date.parse('2026-12-01T00:00:00Z');

  before(async () => {
    upstream = await startFakeUpstream({ users: { [USER]: PASSWORD }, anonymous: false, rateLimit: { limit: 11, windowSeconds: 21600 }, now: () => clock });
    cistern = await startCistern(
      {
        registries: { hub: { registry: upstream.url, kind: 'docker-hub', username: USER, accessToken: PASSWORD, freshness: '1h' } },
        pullThrough: { quotaReserve: 10, retries: 0, defaultMirror: 'hub' },
      },
      undefined,
      () => new Date(clock),
    );
  });
  after(async () => {
    await cistern.stop();
    await upstream.stop();
  });

  it('spends the last pulls on cold images, not on revalidating cached tags', async () => {
    const v1 = image('quota-v1');
    upstream.addImage('library/app', 'stable', v1);
    upstream.addImage('library/other', 'v1', image('quota-other'));
    await pull(cistern.url, 'hub/app', 'stable'); // remaining 10
    await pull(cistern.url, 'hub/other', 'v1'); // remaining 9: below the reserve
    upstream.addImage('library/app', 'stable', image('quota-v2'));
    clock += 2 * HOUR;
    upstream.reset();
    const served = await pull(cistern.url, 'hub/app', 'stable');
    assert.equal(served.digest, v1.manifestDigest, 'the cached image, not a pull spent on the new one');
    assert.equal(upstream.count({ kind: 'manifest', method: 'HEAD' }), 1);
    assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 0);
    const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
    assert.match(metrics, /cistern_cache_stale_serves_total\{rule="hub",reason="quota-reserve"\} 1/);
    assert.match(metrics, /cistern_upstream_ratelimit_remaining\{identity="hub:authenticated"\} 9/);
  });

  it('serves prefix-less requests (Docker registry-mirrors) from the default rule, and local repositories locally', async () => {
    const img = image('mirror-default');
    upstream.addImage('library/busybox', '1.36', img);
    assert.equal((await pull(cistern.url, 'library/busybox', '1.36')).digest, img.manifestDigest);
    assert.equal((await fetch(`${cistern.url}/v2/hub/busybox/manifests/1.36`, { method: 'HEAD' })).status, 200, 'cached under the rule');
    const { pushImage } = await import('../helpers/oci.ts');
    // Asked for before it exists here: a mirror request (Docker Hub has no mine/app either).
    assert.equal((await fetch(`${cistern.url}/v2/mine/app/manifests/v1`)).status, 404);
    const mine = await pushImage(cistern.url, 'mine/app', 'v1', 'local-app');
    // Pushed now: served locally at once, though the name was just remembered as not local.
    assert.equal((await pull(cistern.url, 'mine/app', 'v1')).digest, mine.digest);
  });
});
