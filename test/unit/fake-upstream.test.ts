/**
 * The fake Docker-Hub-like upstream (test/fixtures/fake-upstream.ts), proven with plain fetch: token flow,
 * scope enforcement, redirect + CDN ranges, rate limits, every fault, and request accounting.
 * Time is a variable (`clock`), never slept on, except for the `slow` fault which is real time by nature.
 */
import { after, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from '../fixtures/fake-upstream.ts';
import { buildImage, buildIndex, sha256, writeLayerFile, type BuiltImage } from '../fixtures/image-builder.ts';

const T0 = Date.UTC(2024, 0, 1);
let clock = T0;
const now = () => clock;

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const img = buildImage({ seed: 'fake-upstream-a', layers: [{ size: 200_000 }, { size: 10 }] });
const imgB = buildImage({ seed: 'fake-upstream-b' });
const bigLayer = (i: BuiltImage) => i.layers[0]!;

/** Starts an upstream that is stopped after the current test. */
const started: FakeUpstream[] = [];
async function upstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const up = await startFakeUpstream({ now, ...opts });
  started.push(up);
  up.addImage('team/app', 'v1', img);
  up.addImage('team/other', 'v1', imgB);
  return up;
}

async function token(up: FakeUpstream, repo: string, creds?: [string, string]): Promise<string> {
  const res = await fetch(`${up.url}/token?service=fake.registry&scope=repository:${repo}:pull`, {
    headers: creds ? { authorization: basic(...creds) } : {},
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

/** Reads a body until it ends or breaks; returns what arrived and the error, if any. */
async function readAll(res: Response): Promise<{ bytes: Buffer; error?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of res.body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
    return { bytes: Buffer.concat(chunks) };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error: error as Error };
  }
}

beforeEach(async () => {
  clock = T0;
  while (started.length) await started.pop()!.stop();
});
after(async () => {
  while (started.length) await started.pop()!.stop();
});

describe('token auth (auth: token)', () => {
  test('challenge, token with Basic credentials, then pull with the Bearer token', async () => {
    const up = await upstream({ users: { u: 'p' } });
    assert.match(up.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(up.host, up.url.slice('http://'.length));

    const base = await fetch(`${up.url}/v2/`);
    assert.equal(base.status, 401);
    assert.equal(base.headers.get('www-authenticate'), `Bearer realm="${up.url}/token",service="fake.registry"`);

    const m401 = await fetch(`${up.url}/v2/team/app/manifests/v1`);
    assert.equal(m401.status, 401);
    assert.equal(
      m401.headers.get('www-authenticate'),
      `Bearer realm="${up.url}/token",service="fake.registry",scope="repository:team/app:pull"`,
    );

    const t = await fetch(`${up.url}/token?service=fake.registry&scope=repository:team/app:pull`, { headers: { authorization: basic('u', 'p') } });
    assert.equal(t.status, 200);
    const body = (await t.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'issued_at', 'token']);
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 300);
    assert.equal(body.issued_at, new Date(T0).toISOString());

    const ok = await fetch(`${up.url}/v2/`, { headers: bearer(body.token as string) });
    assert.equal(ok.status, 200);
    const m = await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(body.token as string) });
    assert.equal(m.status, 200);
    assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifest);

    assert.deepEqual(
      up.tokens.map((g) => [g.identity, g.repos]),
      [['u', ['team/app']]],
    );
    assert.equal(up.count({ kind: 'token', status: 200 }), 1);
    assert.equal(up.count({ host: 'token' }), 1);
    assert.equal(up.requests.find((r) => r.kind === 'manifest' && r.status === 200)?.identity, 'u');
  });

  test('wrong credentials are refused; anonymous is allowed or refused by option', async () => {
    const up = await upstream({ users: { u: 'p' } });
    const wrong = await fetch(`${up.url}/token?scope=repository:team/app:pull`, { headers: { authorization: basic('u', 'nope') } });
    assert.equal(wrong.status, 401);
    const unknown = await fetch(`${up.url}/token?scope=repository:team/app:pull`, { headers: { authorization: basic('who', 'p') } });
    assert.equal(unknown.status, 401);
    const anon = await token(up, 'team/app');
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(anon) })).status, 200);
    assert.deepEqual(up.tokens.map((g) => g.identity), ['anonymous']);
    assert.equal(up.count({ kind: 'token', status: 401 }), 2);

    const closed = await upstream({ users: { u: 'p' }, anonymous: false });
    assert.equal((await fetch(`${closed.url}/token?scope=repository:team/app:pull`)).status, 401);
    await token(closed, 'team/app', ['u', 'p']);
  });

  test('without `users`, any credentials are accepted and the user name is the identity', async () => {
    const up = await upstream();
    await token(up, 'team/app', ['whoever', 'anything']);
    assert.deepEqual(up.tokens.map((g) => g.identity), ['whoever']);
  });

  test('a token only works for the repository of its scope', async () => {
    const up = await upstream();
    const forApp = await token(up, 'team/app');
    const res = await fetch(`${up.url}/v2/team/other/manifests/v1`, { headers: bearer(forApp) });
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get('www-authenticate'),
      `Bearer realm="${up.url}/token",service="fake.registry",scope="repository:team/other:pull",error="insufficient_scope"`,
    );
    assert.equal((await fetch(`${up.url}/v2/team/other/blobs/${imgB.config.digest}`, { headers: bearer(forApp), redirect: 'manual' })).status, 401);
    assert.equal((await fetch(`${up.url}/v2/team/other/tags/list`, { headers: bearer(forApp) })).status, 401);

    // Several scopes in one token request (repeated `scope` parameters) grant all of them.
    const t = await fetch(`${up.url}/token?scope=repository:team/app:pull&scope=repository:team/other:pull`);
    const both = ((await t.json()) as { token: string }).token;
    assert.equal((await fetch(`${up.url}/v2/team/other/manifests/v1`, { headers: bearer(both) })).status, 200);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(both) })).status, 200);
  });

  test('tokens expire after expires_in (injectable clock); unknown tokens are invalid', async () => {
    const up = await upstream({ tokenExpiresIn: 60 });
    const t = await token(up, 'team/app');
    clock = T0 + 59_000;
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) })).status, 200);
    clock = T0 + 60_000;
    const expired = await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) });
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer('made-up') })).status, 401);

    const fresh = await token(up, 'team/app');
    up.revokeTokens();
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(fresh) })).status, 401);
  });
});

describe('basic and no auth', () => {
  test("auth: 'basic' requires Basic on the registry itself", async () => {
    const up = await upstream({ auth: 'basic', users: { u: 'p' } });
    const none = await fetch(`${up.url}/v2/team/app/manifests/v1`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="fake"');
    assert.equal((await fetch(`${up.url}/v2/`)).status, 401);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: { authorization: basic('u', 'bad') } })).status, 401);
    const ok = await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: { authorization: basic('u', 'p') } });
    assert.equal(ok.status, 200);
    assert.equal(up.requests.at(-1)?.identity, 'u');
    assert.equal((await fetch(`${up.url}/token?scope=repository:team/app:pull`)).status, 404, 'no token endpoint in basic mode');
  });

  test("auth: 'none' answers everyone", async () => {
    const up = await upstream({ auth: 'none' });
    assert.equal((await fetch(`${up.url}/v2/`)).status, 200);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`)).status, 200);
    assert.equal(up.requests.at(-1)?.identity, 'anonymous');
  });
});

describe('manifests and tags', () => {
  test('GET/HEAD by tag and digest carry digest, type and length; HEAD has no body', async () => {
    const up = await upstream({ auth: 'none' });
    for (const ref of ['v1', img.manifestDigest]) {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(`${up.url}/v2/team/app/manifests/${ref}`, { method, headers: { accept: img.manifestMediaType } });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('docker-content-digest'), img.manifestDigest);
        assert.equal(res.headers.get('content-type'), img.manifestMediaType);
        assert.equal(res.headers.get('content-length'), String(img.manifest.length));
        assert.equal(res.headers.get('etag'), `"${img.manifestDigest}"`);
        const body = Buffer.from(await res.arrayBuffer());
        assert.deepEqual(body, method === 'GET' ? img.manifest : Buffer.alloc(0));
      }
    }
    assert.equal(up.requests[0]?.headers.accept, img.manifestMediaType, 'request headers are recorded');
    const missing = await fetch(`${up.url}/v2/team/app/manifests/nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0]?.code, 'MANIFEST_UNKNOWN');
    assert.equal((await fetch(`${up.url}/v2/no/such/manifests/v1`)).status, 404);
  });

  test('index with children, tag moves, deletes, tags/list with pagination', async () => {
    const up = await upstream({ auth: 'none' });
    const arm = buildImage({ seed: 'fake-upstream-arm', platform: { os: 'linux', architecture: 'arm64' } });
    const idx = buildIndex([img, arm]);
    assert.equal(up.addIndex('multi/arch', 'latest', idx), idx.manifestDigest);
    const res = await fetch(`${up.url}/v2/multi/arch/manifests/latest`);
    assert.equal(res.headers.get('content-type'), idx.manifestMediaType);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), idx.manifest);
    assert.equal((await fetch(`${up.url}/v2/multi/arch/manifests/${arm.manifestDigest}`)).status, 200);
    assert.equal((await fetch(`${up.url}/v2/multi/arch/blobs/${arm.config.digest}`)).status, 200, 'child blobs stored too');

    up.addImage('team/app', undefined, imgB);
    up.tag('team/app', 'v1', imgB.manifestDigest);
    const moved = await fetch(`${up.url}/v2/team/app/manifests/v1`, { method: 'HEAD' });
    assert.equal(moved.headers.get('docker-content-digest'), imgB.manifestDigest);
    assert.throws(() => up.tag('team/app', 'x', sha256('nothing')));

    up.tag('team/app', 'v2', imgB.manifestDigest);
    up.tag('team/app', 'a', img.manifestDigest);
    const page1 = await fetch(`${up.url}/v2/team/app/tags/list?n=2`);
    assert.deepEqual(await page1.json(), { name: 'team/app', tags: ['a', 'v1'] });
    assert.equal(page1.headers.get('link'), '</v2/team/app/tags/list?n=2&last=v1>; rel="next"');
    assert.deepEqual(await (await fetch(`${up.url}/v2/team/app/tags/list?n=2&last=v1`)).json(), { name: 'team/app', tags: ['v2'] });
    assert.equal((await fetch(`${up.url}/v2/nobody/tags/list`)).status, 404);

    assert.equal(up.deleteManifest('team/app', 'a'), true, 'a tag: untag only');
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/${img.manifestDigest}`, { method: 'HEAD' })).status, 200);
    assert.equal(up.deleteManifest('team/app', imgB.manifestDigest), true, 'a digest: manifest and its tags');
    assert.deepEqual(up.tagsOf('team/app'), []);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`)).status, 404);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/${imgB.manifestDigest}`)).status, 404);
  });

  test('the fake is read-only', async () => {
    const up = await upstream({ auth: 'none' });
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v9`, { method: 'PUT', body: '{}' })).status, 405);
    assert.equal((await fetch(`${up.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })).status, 405);
  });
});

describe('blobs: redirect to the CDN, ranges', () => {
  test('registry answers 307 to a signed CDN URL; the CDN serves bytes and records Authorization', async () => {
    const up = await upstream();
    const t = await token(up, 'team/app');
    const layer = bigLayer(img);
    const redirect = await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`, { headers: bearer(t), redirect: 'manual' });
    assert.equal(redirect.status, 307);
    const location = redirect.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${up.cdnUrl}/blobs/${layer.digest}?`), location);
    assert.match(location, /[?&]sig=/);
    assert.match(up.cdnUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(up.cdnPort, up.port);

    // A well-behaved client (undici's fetch here) drops Authorization on a cross-origin redirect.
    const followed = await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`, { headers: bearer(t) });
    assert.equal(followed.status, 200);
    assert.equal(followed.headers.get('content-length'), String(layer.size));
    assert.equal(followed.headers.get('accept-ranges'), 'bytes');
    assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), layer.digest);
    assert.equal(up.count({ host: 'cdn', authorization: false }), 1);

    // A leaky client is caught.
    const leaky = await fetch(location, { headers: bearer(t) });
    await leaky.arrayBuffer();
    assert.equal(up.count({ host: 'cdn', authorization: true }), 1);
    const cdnRecord = up.requests.find((r) => r.host === 'cdn');
    assert.equal(cdnRecord?.kind, 'blob');
    assert.equal(cdnRecord?.digest, layer.digest);
    assert.equal(cdnRecord?.repo, 'team/app');

    // HEAD is redirected too, and the CDN answers HEAD.
    const head = await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`, { method: 'HEAD', headers: bearer(t) });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(layer.size));

    // The signature is the credential: tampering or expiry gets 403.
    assert.equal((await fetch(location.replace(/sig=[^&]+/, 'sig=forged'))).status, 403);
    clock = T0 + 1201_000;
    assert.equal((await fetch(location)).status, 403);

    // Blobs are linked per repository.
    const other = await token(up, 'team/other');
    assert.equal((await fetch(`${up.url}/v2/team/other/blobs/${layer.digest}`, { headers: bearer(other), redirect: 'manual' })).status, 404);
  });

  test('CDN ranges: a-b and a- give 206, bad ranges 416 or ignored', async () => {
    const up = await upstream();
    const layer = bigLayer(img);
    const bytes = layer.bytes!;
    const t = await token(up, 'team/app');
    const loc = (await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`, { headers: bearer(t), redirect: 'manual' })).headers.get('location')!;

    const r1 = await fetch(loc, { headers: { range: 'bytes=10-19' } });
    assert.equal(r1.status, 206);
    assert.equal(r1.headers.get('content-range'), `bytes 10-19/${layer.size}`);
    assert.equal(r1.headers.get('content-length'), '10');
    assert.deepEqual(Buffer.from(await r1.arrayBuffer()), bytes.subarray(10, 20));

    const r2 = await fetch(loc, { headers: { range: 'bytes=1000-' } });
    assert.equal(r2.status, 206);
    assert.equal(r2.headers.get('content-range'), `bytes 1000-${layer.size - 1}/${layer.size}`);
    assert.deepEqual(Buffer.from(await r2.arrayBuffer()), bytes.subarray(1000));

    const r3 = await fetch(loc, { headers: { range: 'bytes=-5' } });
    assert.deepEqual(Buffer.from(await r3.arrayBuffer()), bytes.subarray(-5));

    const r4 = await fetch(loc, { headers: { range: `bytes=${layer.size}-` } });
    assert.equal(r4.status, 416);
    assert.equal(r4.headers.get('content-range'), `bytes */${layer.size}`);

    const r5 = await fetch(loc, { headers: { range: 'bytes=0-1,5-6' } });
    assert.equal(r5.status, 200, 'multi-range is ignored');
    await r5.arrayBuffer();
  });

  test('redirectBlobs: false serves blobs (with ranges) from the registry, including file-backed layers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-fake-upstream-'));
    try {
      const onDisk = await writeLayerFile(join(dir, 'layer.tar'), { seed: 'fake-upstream-disk', size: 300_000, compress: false });
      const image = buildImage({ seed: 'fake-upstream-disk', layers: [onDisk] });
      const up = await upstream({ auth: 'none', redirectBlobs: false });
      up.addImage('disk/app', 'v1', image);
      const res = await fetch(`${up.url}/v2/disk/app/blobs/${onDisk.digest}`, { redirect: 'manual' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), onDisk.digest);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), onDisk.digest);
      const part = await fetch(`${up.url}/v2/disk/app/blobs/${onDisk.digest}`, { headers: { range: 'bytes=100000-' } });
      assert.equal(part.status, 206);
      assert.equal((await part.arrayBuffer()).byteLength, onDisk.size - 100_000);
      assert.equal(up.count({ host: 'cdn' }), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rate limits (Docker Hub style)', () => {
  test('manifest GETs count, HEADs do not; headers on both; 429 with Retry-After; HEAD still 200 at zero', async () => {
    const up = await upstream({ auth: 'none', rateLimit: { limit: 2, windowSeconds: 600 } });
    const head = () => fetch(`${up.url}/v2/team/app/manifests/v1`, { method: 'HEAD' });
    const get = () => fetch(`${up.url}/v2/team/app/manifests/v1`);

    const h0 = await head();
    assert.equal(h0.headers.get('ratelimit-limit'), '2;w=600');
    assert.equal(h0.headers.get('ratelimit-remaining'), '2;w=600');
    assert.equal(h0.headers.get('docker-ratelimit-source'), 'anonymous');

    clock = T0 + 10_000;
    const g1 = await get();
    assert.equal(g1.status, 200);
    assert.equal(g1.headers.get('ratelimit-remaining'), '1;w=600');
    clock = T0 + 20_000;
    assert.equal((await get()).headers.get('ratelimit-remaining'), '0;w=600');
    assert.equal(up.rateLimitRemaining('anonymous'), 0);

    const refused = await get();
    assert.equal(refused.status, 429);
    // The first pull (at T0+10s) leaves the 600 s window at T0+610s: 590 s from now.
    assert.equal(refused.headers.get('retry-after'), '590');
    assert.equal(refused.headers.get('ratelimit-remaining'), '0;w=600');
    assert.deepEqual(await refused.json(), {
      errors: [
        {
          code: 'TOOMANYREQUESTS',
          message:
            'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limits',
        },
      ],
    });

    const h1 = await head();
    assert.equal(h1.status, 200, 'HEAD is neither counted nor refused');
    assert.equal(h1.headers.get('ratelimit-remaining'), '0;w=600');
    assert.equal(h1.headers.get('docker-content-digest'), img.manifestDigest);

    // Blobs are not rate limited.
    assert.equal((await fetch(`${up.url}/v2/team/app/blobs/${img.config.digest}`)).status, 200);

    clock = T0 + 610_001; // the first pull slid out of the window
    assert.equal((await get()).status, 200);
    assert.equal((await get()).status, 429);
    assert.equal(up.count({ kind: 'manifest', method: 'GET', status: 200 }), 3);
    assert.equal(up.count({ kind: 'manifest', status: 429 }), 2);

    up.resetRateLimits();
    assert.equal(up.rateLimitRemaining('anonymous'), 2);
  });

  test('limits are per identity (user vs anonymous), with per-identity overrides', async () => {
    const up = await upstream({ users: { u: 'p' }, rateLimit: { limit: 1, windowSeconds: 21600, limits: { u: 3 } } });
    const anon = await token(up, 'team/app');
    const user = await token(up, 'team/app', ['u', 'p']);
    const pull = (t: string) => fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) });
    assert.equal((await pull(anon)).status, 200);
    assert.equal((await pull(anon)).status, 429);
    const u1 = await pull(user);
    assert.equal(u1.status, 200);
    assert.equal(u1.headers.get('docker-ratelimit-source'), 'u');
    assert.equal(u1.headers.get('ratelimit-limit'), '3;w=21600');
    assert.equal(u1.headers.get('ratelimit-remaining'), '2;w=21600');
    assert.equal(up.count({ kind: 'manifest', identity: 'anonymous', status: 429 }), 1);
  });
});

describe('faults', () => {
  test('status: 503 for the next request only, then normal; scoped by repo', async () => {
    const up = await upstream({ auth: 'none' });
    const h = up.fault({ kind: 'manifest', repo: 'team/app', times: 1 }, { type: 'status', status: 503 });
    assert.equal((await fetch(`${up.url}/v2/team/other/manifests/v1`)).status, 200, 'other repo unaffected');
    const r = await fetch(`${up.url}/v2/team/app/manifests/v1`);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]?.code, 'UNAVAILABLE');
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`)).status, 200);
    assert.equal(h.hits, 1);
    assert.equal(h.remaining, 0);
    assert.deepEqual(up.requests.find((x) => x.status === 503)?.faults, ['status']);
  });

  test('status: 429 with Retry-After, always on until cleared; 500/502 too', async () => {
    const up = await upstream({ auth: 'none' });
    const h = up.fault({ kind: 'manifest' }, { type: 'status', status: 429, retryAfter: 7 });
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${up.url}/v2/team/app/manifests/v1`);
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '7');
      assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]?.code, 'TOOMANYREQUESTS');
    }
    assert.equal(h.remaining, Infinity);
    h.clear();
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`)).status, 200);
    for (const status of [500, 502]) {
      up.fault({ kind: 'blob', times: 1 }, { type: 'status', status });
      assert.equal((await fetch(`${up.url}/v2/team/app/blobs/${img.config.digest}`)).status, status);
    }
  });

  test('status on the CDN host only (the registry still redirects)', async () => {
    const up = await upstream({ auth: 'none' });
    up.fault({ host: 'cdn', times: 1 }, { type: 'status', status: 502 });
    assert.equal((await fetch(`${up.url}/v2/team/app/blobs/${img.config.digest}`)).status, 502);
    assert.equal((await fetch(`${up.url}/v2/team/app/blobs/${img.config.digest}`)).status, 200);
    assert.deepEqual(
      up.requests.map((r) => [r.host, r.status]),
      [['registry', 307], ['cdn', 502], ['registry', 307], ['cdn', 200]],
    );
  });

  test('down: the connection closes without a response; recorded with status 0', async () => {
    const up = await upstream({ auth: 'none' });
    up.fault({ kind: 'manifest', times: 2 }, { type: 'down' });
    await assert.rejects(fetch(`${up.url}/v2/team/app/manifests/v1`), TypeError);
    await assert.rejects(fetch(`${up.url}/v2/team/app/manifests/v1`), TypeError);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`)).status, 200);
    assert.equal(up.count({ kind: 'manifest', status: 0 }), 2, 'fetch does not retry behind our back');
  });

  test('drop: headers and the first K bytes, then the connection closes; a Range request resumes', async () => {
    const up = await upstream({ auth: 'none' });
    const layer = bigLayer(img);
    up.fault({ host: 'cdn', digest: layer.digest, times: 1 }, { type: 'drop', afterBytes: 12_345 });
    const res = await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(layer.size));
    const first = await readAll(res);
    assert.ok(first.error, 'the body errors');
    assert.equal(first.bytes.length, 12_345);

    const rest = await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`, { headers: { range: `bytes=${first.bytes.length}-` } });
    assert.equal(rest.status, 206);
    const whole = Buffer.concat([first.bytes, Buffer.from(await rest.arrayBuffer())]);
    assert.equal(sha256(whole), layer.digest);
    assert.equal(up.requests.filter((r) => r.host === 'cdn')[1]?.headers.range, 'bytes=12345-');

    // K = 0: headers only.
    up.fault({ host: 'cdn', times: 1 }, { type: 'drop', afterBytes: 0 });
    const zero = await readAll(await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`));
    assert.ok(zero.error);
    assert.equal(zero.bytes.length, 0);
  });

  test('corrupt: same length, different digest; stored content untouched', async () => {
    const up = await upstream({ auth: 'none' });
    const layer = bigLayer(img);
    up.fault({ kind: 'blob', times: 1 }, { type: 'corrupt' });
    const bad = Buffer.from(await (await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`)).arrayBuffer());
    assert.equal(bad.length, layer.size);
    assert.notEqual(sha256(bad), layer.digest);
    const good = Buffer.from(await (await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`)).arrayBuffer());
    assert.equal(sha256(good), layer.digest);

    up.fault({ kind: 'manifest', times: 1 }, { type: 'corrupt', at: 0 });
    const m = Buffer.from(await (await fetch(`${up.url}/v2/team/app/manifests/v1`)).arrayBuffer());
    assert.equal(m.length, img.manifest.length);
    assert.equal(m[0], img.manifest[0]! ^ 0xff);
  });

  test('slow: delayed headers and a throttled body (real time, kept short)', async () => {
    const up = await upstream({ auth: 'none', redirectBlobs: false });
    up.fault({ kind: 'manifest', times: 1 }, { type: 'slow', headersDelayMs: 300 });
    let t = performance.now();
    const m = await fetch(`${up.url}/v2/team/app/manifests/v1`);
    assert.ok(performance.now() - t >= 280, 'headers delayed');
    await m.arrayBuffer();

    const layer = bigLayer(img); // ~200 KB
    up.fault({ kind: 'blob', times: 1 }, { type: 'slow', bytesPerSecond: 500_000 });
    t = performance.now();
    const b = Buffer.from(await (await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`)).arrayBuffer());
    const elapsed = performance.now() - t;
    assert.equal(sha256(b), layer.digest);
    assert.ok(elapsed >= 350, `throttled to ~400 ms, took ${elapsed.toFixed(0)} ms`);

    t = performance.now();
    await (await fetch(`${up.url}/v2/team/app/blobs/${layer.digest}`)).arrayBuffer();
    assert.ok(performance.now() - t < 300, 'fault used up');
  });

  test('refuse-credentials: the token endpoint refuses good credentials and a valid token is treated as revoked', async () => {
    const up = await upstream({ users: { u: 'p' } });
    const t = await token(up, 'team/app', ['u', 'p']);
    up.fault({ host: 'token', times: 1 }, { type: 'refuse-credentials' });
    assert.equal((await fetch(`${up.url}/token?scope=repository:team/app:pull`, { headers: { authorization: basic('u', 'p') } })).status, 401);
    await token(up, 'team/app', ['u', 'p']);

    up.fault({ host: 'registry', kind: 'manifest', times: 1 }, { type: 'refuse-credentials' });
    const revoked = await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) });
    assert.equal(revoked.status, 401);
    assert.match(revoked.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) })).status, 200);

    const b = await upstream({ auth: 'basic', users: { u: 'p' } });
    b.fault({}, { type: 'refuse-credentials' });
    assert.equal((await fetch(`${b.url}/v2/`, { headers: { authorization: basic('u', 'p') } })).status, 401);
    b.clearFaults();
    assert.equal((await fetch(`${b.url}/v2/`, { headers: { authorization: basic('u', 'p') } })).status, 200);
  });

  test('stop()/start(): the host becomes unreachable and comes back on the same ports', async () => {
    const up = await upstream({ auth: 'none' });
    const { url, cdnUrl } = up;
    assert.equal((await fetch(`${url}/v2/`)).status, 200);
    await up.stop('cdn');
    await assert.rejects(fetch(`${url}/v2/team/app/blobs/${img.config.digest}`), TypeError, 'redirect to a dead CDN');
    assert.equal((await fetch(`${url}/v2/`)).status, 200, 'registry still up');
    await up.stop();
    // The first attempt may reuse a pooled keep-alive socket that the client has not yet seen die
    // (UND_ERR_SOCKET); once the pool has noticed, connecting is refused.
    await assert.rejects(fetch(`${url}/v2/`), TypeError);
    await assert.rejects(fetch(`${url}/v2/`), (e: Error & { cause?: { code?: string } }) => e.cause?.code === 'ECONNREFUSED');
    await up.start();
    assert.equal(up.url, url);
    assert.equal(up.cdnUrl, cdnUrl);
    assert.equal((await fetch(`${url}/v2/team/app/blobs/${img.config.digest}`)).status, 200);
  });
});

describe('request accounting', () => {
  test('records, counts with filters or predicates, and reset() keeps content', async () => {
    const up = await upstream();
    const t = await token(up, 'team/app');
    await (await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) })).arrayBuffer();
    await fetch(`${up.url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: bearer(t) });
    await (await fetch(`${up.url}/v2/team/app/blobs/${img.config.digest}`, { headers: bearer(t) })).arrayBuffer();
    await (await fetch(`${up.url}/v2/team/app/tags/list`, { headers: bearer(t) })).arrayBuffer();
    await (await fetch(`${up.url}/v2/`)).arrayBuffer();

    assert.deepEqual(
      up.requests.map((r) => [r.host, r.method, r.kind, r.status, r.authorization]),
      [
        ['token', 'GET', 'token', 200, false],
        ['registry', 'GET', 'manifest', 200, true],
        ['registry', 'HEAD', 'manifest', 200, true],
        ['registry', 'GET', 'blob', 307, true],
        ['cdn', 'GET', 'blob', 200, false],
        ['registry', 'GET', 'tags', 200, true],
        ['registry', 'GET', 'base', 401, false],
      ],
    );
    const m = up.requests[1]!;
    assert.equal(m.path, '/v2/team/app/manifests/v1');
    assert.equal(m.repo, 'team/app');
    assert.equal(m.reference, 'v1');
    assert.equal(m.digest, img.manifestDigest);
    assert.equal(m.identity, 'anonymous');
    assert.equal(m.at, T0);

    assert.equal(up.count({ kind: 'manifest', method: 'GET' }), 1);
    assert.equal(up.count({ kind: 'manifest' }), 2);
    assert.equal(up.count({ kind: 'blob', repo: 'team/app' }), 2);
    assert.equal(up.count({ digest: img.manifestDigest }), 2);
    assert.equal(up.count((r) => r.status >= 400), 1);
    assert.equal(up.count(), 7);

    const held = up.requests;
    up.reset();
    assert.equal(up.count(), 0);
    assert.equal(held.length, 0, 'reset clears in place');
    assert.equal(up.tokens.length, 0);
    assert.equal((await fetch(`${up.url}/v2/team/app/manifests/v1`, { headers: bearer(t) })).status, 200, 'content and tokens survive reset');
    assert.equal(up.count(), 1);
  });
});
