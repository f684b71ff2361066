/**
 * End-to-end: the real `skopeo` (1.9) pulls from the fake Docker-Hub-like upstream
 * (test/fixtures/fake-upstream.ts), proving the fake is a credible upstream for a real client: token auth
 * with credentials, the 307 redirect to the CDN host, and byte-exact content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeUpstream } from '../fixtures/fake-upstream.ts';
import { blobsOf, buildImage, sha256 } from '../fixtures/image-builder.ts';

const SKOPEO = process.env.SKOPEO_BIN ?? '/usr/bin/skopeo';

function skopeo(...args: string[]): Promise<string> {
  const argv = ['--insecure-policy', ...args];
  return new Promise((resolve, reject) => {
    execFile(SKOPEO, argv, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`skopeo ${argv.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

test('skopeo 1.9 inspects and copies from the fake upstream (token auth, CDN redirect)', { timeout: 180_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'cistern-e2e-fake-upstream-'));
  const up = await startFakeUpstream({ users: { u: 'p' }, anonymous: false, rateLimit: { limit: 100, windowSeconds: 21600 } });
  try {
    const image = buildImage({ seed: 'e2e-fake-upstream', mediaTypes: 'docker', layers: [{ size: 300_000 }, { size: 100 }] });
    up.addImage('team/app', 'v1', image);
    const ref = `docker://${up.host}/team/app:v1`;

    // Without credentials the token endpoint refuses (anonymous: false), and skopeo fails.
    await assert.rejects(skopeo('inspect', '--tls-verify=false', ref));
    up.reset();

    const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--creds', 'u:p', ref)) as {
      Digest: string;
      RepoTags: string[];
      Labels: Record<string, string>;
      Layers: string[];
    };
    assert.equal(inspected.Digest, image.manifestDigest);
    assert.deepEqual(inspected.RepoTags, ['v1']);
    assert.equal(inspected.Labels['io.cistern.test.seed'], 'e2e-fake-upstream');
    assert.deepEqual(inspected.Layers, image.layers.map((l) => l.digest));
    assert.ok(up.tokens.length >= 1 && up.tokens.every((t) => t.identity === 'u' && t.repos.includes('team/app')), 'tokens went to u');
    assert.equal(up.count({ kind: 'manifest', method: 'GET', status: 200 }), 1);
    assert.equal(up.rateLimitRemaining('u'), 99, 'the one manifest GET counted as a pull');

    up.reset();
    const dest = join(work, 'dir');
    await skopeo('copy', '--src-tls-verify=false', '--src-creds', 'u:p', ref, `dir:${dest}`);
    assert.deepEqual(readFileSync(join(dest, 'manifest.json')), image.manifest);
    const files = readdirSync(dest).filter((f) => /^[a-f0-9]{64}$/.test(f)).sort();
    const blobs = blobsOf(image).map((b) => b.digest);
    assert.deepEqual(files.map((f) => `sha256:${f}`), [...blobs].sort());
    for (const f of files) assert.equal(sha256(readFileSync(join(dest, f))), `sha256:${f}`);

    // Every blob went registry → 307 → CDN exactly once, with Bearer on the registry and no credentials on the CDN.
    for (const digest of blobs) {
      assert.equal(up.count({ host: 'registry', kind: 'blob', digest, status: 307, authorization: true }), 1, digest);
      assert.equal(up.count({ host: 'cdn', digest, status: 200 }), 1, digest);
    }
    assert.equal(up.count({ host: 'cdn', authorization: true }), 0, 'skopeo does not leak the token to the CDN');
    assert.equal(up.count({ kind: 'manifest', method: 'GET' }), 1);
  } finally {
    await up.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
