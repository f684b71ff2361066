/**
 * The pull-through cache end to end with real programs only: CNCF Distribution (Debian's docker-registry)
 * as the upstream, anonymous and behind Basic auth, and skopeo pulling through Cistern.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type RunningRegistry } from '../fixtures/distribution.ts';
import { blobsOf, buildImage, buildIndex, pushImage, pushIndex, readOciLayout } from '../fixtures/image-builder.ts';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { skopeo } from '../helpers/skopeo.ts';

describe('pull-through cache with Distribution upstreams and skopeo', { timeout: 300_000 }, () => {
  let open: RunningRegistry;
  let guarded: RunningRegistry;
  let cistern: TestCistern;
  let work: string;
  const image = buildImage({ seed: 'e2e-cache', layers: [{ size: 3 << 20 }, { size: 200_000 }, { size: 5000 }] });
  const amd = buildImage({ seed: 'e2e-amd', layers: [{ size: 100_000 }], platform: { os: 'linux', architecture: 'amd64' } });
  const arm = buildImage({ seed: 'e2e-arm', layers: [{ size: 100_000 }], platform: { os: 'linux', architecture: 'arm64' } });
  const index = buildIndex([amd, arm]);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'cistern-e2e-cache-'));
    [open, guarded] = await Promise.all([startDistribution(), startDistribution({ auth: { users: { puller: 's3cret-pass' } } })]);
    await pushImage(open.url, 'team/app', 'v1', image);
    await pushIndex(open.url, 'team/multi', 'latest', index);
    await pushImage(guarded.url, 'private/app', 'v1', image, { auth: { username: 'puller', password: 's3cret-pass' } });
    cistern = await startCistern({
      registries: {
        open: { registry: open.url },
        guarded: { registry: guarded.url, username: 'puller', accessToken: 's3cret-pass' },
        wrongpass: { registry: guarded.url, username: 'puller', accessToken: 'not-the-password' },
      },
    });
  });
  after(async () => {
    await cistern?.stop();
    await Promise.all([open?.stop(), guarded?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  async function pullInto(reference: string, name: string, ...flags: string[]) {
    const dir = join(work, name);
    await skopeo('copy', '--src-tls-verify=false', ...flags, `docker://${cistern.host}/${reference}`, `oci:${dir}:x`);
    return readOciLayout(dir);
  }

  it('pulls an anonymous upstream image through Cistern, byte for byte, then without the upstream', async () => {
    const layout = await pullInto('open/team/app:v1', 'open-1');
    assert.equal(layout.resolve('x').digest, image.manifestDigest);
    for (const blob of blobsOf(image)) assert.ok(layout.hasBlob(blob.digest), blob.digest);
    await open.stop();
    const again = await pullInto('open/team/app:v1', 'open-2');
    assert.equal(again.resolve('x').digest, image.manifestDigest, 'served from the cache with the upstream gone');
  });

  it('pulls through an upstream that requires Basic auth', async () => {
    const layout = await pullInto('guarded/private/app:v1', 'guarded');
    assert.equal(layout.resolve('x').digest, image.manifestDigest);
    const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${cistern.host}/guarded/private/app:v1`)) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, image.manifestDigest);
    assert.equal(inspected.Layers.length, 3);
  });

  it('names the upstream and the cause when its credentials are wrong', async () => {
    // skopeo shows only the status of a 5xx; the body names the upstream and the cause for people and logs.
    await assert.rejects(skopeo('inspect', '--tls-verify=false', `docker://${cistern.host}/wrongpass/private/app:v1`), /502 Bad Gateway/);
    const res = await fetch(`${cistern.url}/v2/wrongpass/private/app/manifests/v1`);
    assert.equal(res.status, 502);
    const body = await res.text();
    assert.match(body, /upstream wrongpass failed: refused our credentials \(401\)/);
    assert.ok(!body.includes('not-the-password'));
  });

  it('caches a multi-arch index with --all', async () => {
    const multi = join(work, 'multi');
    // Distribution's upstream stopped in the first test: start a new one with the index for this one.
    const upstream = await startDistribution();
    try {
      await pushIndex(upstream.url, 'team/multi', 'latest', index);
      const c = await startCistern({ registries: { up: { registry: upstream.url } } });
      try {
        await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${c.host}/up/team/multi:latest`, `oci:${multi}:x`);
        const layout = readOciLayout(multi);
        assert.equal(layout.resolve('x').digest, index.manifestDigest);
        for (const child of [amd, arm]) assert.ok(layout.hasBlob(child.manifestDigest));
      } finally {
        await c.stop();
      }
    } finally {
      await upstream.stop();
    }
  });
});
