// An upstream that answers, but wrongly: bytes that are not a manifest, a manifest that is not the one
// asked for, one too large, a freshness check without a digest. None of it may be stored or blamed on
// the client; a cached tag keeps being served.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pull } from '../helpers/pull.ts';
import { buildImage, type BuiltImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const HOUR = 3_600_000;
const image = (seed: string): BuiltImage => buildImage({ seed, layers: [{ size: 20_000, compress: false }] });

interface OciErrors {
  errors: { code: string; message: string }[];
}

describe('pull-through cache: an upstream that breaks the protocol', () => {
  let upstream: FakeUpstream;
  let cistern: TestCistern;
  let clock = Date.parse('2026-12-01T00:00:00Z');

  before(async () => {
    upstream = await startFakeUpstream({ now: () => clock });
  });
  after(() => upstream.stop());

  beforeEach(async () => {
    upstream.reset();
    upstream.clearFaults();
    cistern = await startCistern(
      { registries: { hub: { registry: upstream.url, kind: 'docker-hub', freshness: '1h' } }, pullThrough: { retries: 0 } },
      undefined,
      () => new Date(clock),
    );
  });
  afterEach(() => cistern.stop());

  const catalog = async (): Promise<string[]> =>
    ((await (await fetch(`${cistern.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;

  /** GETs `path` and expects 502 UNAVAILABLE naming the upstream and matching `cause`. */
  async function expectUpstreamError(path: string, cause: RegExp): Promise<void> {
    const res = await fetch(`${cistern.url}/v2/${path}`);
    const body = (await res.json()) as OciErrors;
    assert.equal(res.status, 502, JSON.stringify(body));
    assert.equal(body.errors[0]!.code, 'UNAVAILABLE');
    assert.match(body.errors[0]!.message, /^upstream hub failed: /);
    assert.match(body.errors[0]!.message, cause);
  }

  it('a body that is not a manifest is an upstream error, stored nowhere', async () => {
    const img = image('html');
    upstream.addImage('library/html', 'v1', img);
    upstream.fault({ kind: 'manifest', times: 1 }, { type: 'status', status: 200, body: '<html>captive portal</html>', headers: { 'content-type': 'text/html' } });
    await expectUpstreamError('hub/html/manifests/v1', /cannot use \(body is not valid JSON\); discarded/);
    assert.deepEqual(await catalog(), [], 'no repository was created for it');
    // The next pull asks again and gets the real thing.
    assert.equal((await pull(cistern.url, 'hub/html', 'v1')).digest, img.manifestDigest);
    assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 2);
  });

  it('a manifest of an unknown media type is refused the same way', async () => {
    upstream.addImage('library/odd', 'v1', image('odd'));
    const odd = JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-not-a-manifest' });
    upstream.fault({ kind: 'manifest', times: 1 }, { type: 'status', status: 200, body: odd, headers: { 'content-type': 'application/x-not-a-manifest' } });
    await expectUpstreamError('hub/odd/manifests/v1', /unsupported media type application\/x-not-a-manifest/);
  });

  it('a manifest whose bytes are not the digest asked for is discarded', async () => {
    const wanted = image('wanted');
    const other = image('other');
    upstream.addImage('library/swap', 'v1', wanted);
    upstream.fault(
      { kind: 'manifest', times: 1 },
      { type: 'status', status: 200, body: other.manifest.toString('utf8'), headers: { 'content-type': other.manifestMediaType } },
    );
    await expectUpstreamError(`hub/swap/manifests/${wanted.manifestDigest}`, /manifest bytes do not match sha256:/);
    const stored = await fetch(`${cistern.url}/v2/hub/swap/manifests/${other.manifestDigest}`);
    assert.notEqual(stored.status, 200, 'the wrong manifest was not stored under any name');
    assert.equal((await pull(cistern.url, 'hub/swap', wanted.manifestDigest)).digest, wanted.manifestDigest);
  });

  it('a manifest over the size limit is refused without reading it all', async () => {
    upstream.addImage('library/huge', 'v1', image('huge'));
    const huge = JSON.stringify({ schemaVersion: 2, padding: 'x'.repeat(5 * 1024 * 1024) });
    upstream.fault({ kind: 'manifest', times: 1 }, { type: 'status', status: 200, body: huge, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    await expectUpstreamError('hub/huge/manifests/v1', /manifest of \d+ bytes exceeds the limit/);
  });

  it('a cached tag is served stale when revalidation meets an unusable answer', async () => {
    const v1 = image('reval-v1');
    const v2 = image('reval-v2');
    upstream.addImage('library/reval', 'v', v1);
    await pull(cistern.url, 'hub/reval', 'v');
    upstream.addImage('library/reval', 'v', v2);

    // The digest moved, but the new manifest upstream sends is garbage: keep serving v1.
    clock += 2 * HOUR;
    upstream.fault({ kind: 'manifest', method: 'GET', times: 1 }, { type: 'status', status: 200, body: '{"not": "a manifest"}' });
    assert.equal((await pull(cistern.url, 'hub/reval', 'v')).digest, v1.manifestDigest);

    // A freshness check answered without Docker-Content-Digest: also v1, and no GET spent on it.
    clock += 2 * HOUR;
    upstream.reset();
    upstream.fault({ kind: 'manifest', method: 'HEAD', times: 1 }, { type: 'status', status: 200, body: '' });
    assert.equal((await pull(cistern.url, 'hub/reval', 'v')).digest, v1.manifestDigest);
    assert.equal(upstream.count({ kind: 'manifest', method: 'GET' }), 0);

    const metrics = await (await fetch(`${cistern.url}/metrics`)).text();
    assert.match(metrics, /cistern_cache_stale_serves_total\{rule="hub",reason="protocol"\} 2/);
    // Once upstream behaves, the move is picked up.
    clock += 2 * HOUR;
    assert.equal((await pull(cistern.url, 'hub/reval', 'v')).digest, v2.manifestDigest);
  });
});
