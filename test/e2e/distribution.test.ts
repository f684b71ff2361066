/**
 * The Distribution launcher fixture itself (test/fixtures/distribution.ts): plain, htpasswd-auth and
 * pull-through-proxy instances, against the real /usr/bin/docker-registry.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startDistribution } from '../fixtures/distribution.ts';
import { buildImage, buildIndex, pushImage, pushIndex, sha256 } from '../fixtures/image-builder.ts';

const run = promisify(execFile);

describe('startDistribution', { timeout: 120_000 }, () => {
  test('starts on a free 127.0.0.1 port, serves /v2/, stops and cleans up', async () => {
    const [a, b] = await Promise.all([startDistribution(), startDistribution()]);
    try {
      assert.notEqual(a.port, b.port);
      assert.equal(a.host, `127.0.0.1:${a.port}`);
      assert.equal(a.url, `http://${a.host}`);
      const res = await fetch(`${a.url}/v2/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
      assert.ok(existsSync(a.storageDir));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    assert.ok(!existsSync(a.storageDir), 'temp dir removed');
    await assert.rejects(fetch(`${a.url}/v2/`), 'no longer listening');
    await a.stop(); // idempotent
  });

  test('htpasswd auth: 401 without credentials, push/pull with them (fetch and skopeo)', async () => {
    const reg = await startDistribution({ auth: { users: { alice: 'wonderland' } } });
    try {
      const anon = await fetch(`${reg.url}/v2/`);
      assert.equal(anon.status, 401);
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm=/);

      const img = buildImage({ seed: 'auth' });
      await assert.rejects(pushImage(reg.url, 'private/app', 'v1', img, { auth: { username: 'alice', password: 'wrong' } }), /HTTP 401/);
      await pushImage(reg.url, 'private/app', 'v1', img, { auth: { username: 'alice', password: 'wonderland' } });

      const authz = 'Basic ' + Buffer.from('alice:wonderland').toString('base64');
      const got = await fetch(`${reg.url}/v2/private/app/manifests/v1`, { headers: { authorization: authz, accept: img.manifestMediaType } });
      assert.equal(got.status, 200);
      assert.equal(sha256(Buffer.from(await got.arrayBuffer())), img.manifestDigest);

      const { stdout } = await run('/usr/bin/skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:wonderland', `docker://${reg.host}/private/app:v1`]);
      assert.equal(JSON.parse(stdout).Digest, img.manifestDigest);
      await assert.rejects(run('/usr/bin/skopeo', ['inspect', '--tls-verify=false', '--no-creds', `docker://${reg.host}/private/app:v1`]));
    } finally {
      await reg.stop();
    }
  });

  test('proxy mode pulls through from an upstream Distribution and refuses pushes', async () => {
    const upstream = await startDistribution();
    const proxy = await startDistribution({ proxy: { remoteurl: upstream.url } });
    try {
      const idx = buildIndex([
        buildImage({ seed: 'px', platform: { os: 'linux', architecture: 'amd64' }, layers: [{ size: 50_000 }] }),
        buildImage({ seed: 'px', platform: { os: 'linux', architecture: 'arm64' }, layers: [{ size: 50_000 }] }),
      ]);
      await pushIndex(upstream.url, 'library/app', 'v1', idx);

      const res = await fetch(`${proxy.url}/v2/library/app/manifests/v1`, { headers: { accept: idx.manifestMediaType } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), idx.manifestDigest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(idx.manifest));
      const layer = idx.images[1]!.layers[0]!;
      const blob = await fetch(`${proxy.url}/v2/library/app/blobs/${layer.digest}`);
      assert.equal(blob.status, 200);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(layer.bytes!));

      // The proxy stores what it streamed, but commits it a moment after the response ends (Distribution
      // tees the upstream body into its storage): wait for the blob file, then it serves without upstream.
      const hex = layer.digest.slice(7);
      const v2 = join(proxy.storageDir, 'docker/registry/v2');
      const files = [join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), join(v2, 'repositories/library/app/_layers/sha256', hex, 'link')];
      const committed = () => files.every((f) => existsSync(f));
      for (let i = 0; i < 100 && !committed(); i++) await sleep(50);
      assert.ok(committed(), 'proxy committed the blob to its storage');
      await upstream.stop();
      const cached = await fetch(`${proxy.url}/v2/library/app/blobs/${layer.digest}`);
      assert.equal(cached.status, 200);
      assert.equal(sha256(Buffer.from(await cached.arrayBuffer())), layer.digest);

      await assert.rejects(pushImage(proxy.url, 'library/other', 'v1', buildImage({ seed: 'nope' })));
    } finally {
      await proxy.stop();
      await upstream.stop();
    }
  });
});
