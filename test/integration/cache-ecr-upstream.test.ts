// A cache rule of kind `ecr`: the rule holds an AWS access key, and Cistern trades it for ECR's 12-hour
// registry password with a SigV4-signed GetAuthorizationToken. The upstream here is a second Cistern
// with auth on, which speaks ECR's API and verifies the signature as AWS does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMetadata, startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pushImage } from '../helpers/oci.ts';
import { pull } from '../helpers/pull.ts';
import { createServer, type AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { startFakeUpstream } from '../fixtures/fake-upstream.ts';
import { ecrCredential } from '../../src/upstream/ecr-credential.ts';
import type { UpstreamFailure } from '../../src/upstream/failure.ts';

const HOUR = 3_600_000;

describe('pull-through cache: an ECR upstream', () => {
  let dir: string;
  let upstream: TestCistern;
  let offset = 0;
  // Both sides read one clock that moves with real time, so signatures and tokens age together.
  const clock = () => new Date(Date.now() + offset);
  let key: { accessKeyId: string; secretAccessKey: string };
  const pushed: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cistern-ecr-upstream-'));
    const open = await startCistern({}, dir);
    pushed['team/app'] = (await pushImage(open.url, 'team/app', 'v1', 'ecr-upstream/app')).digest;
    pushed['team/db'] = (await pushImage(open.url, 'team/db', 'v1', 'ecr-upstream/db')).digest;
    await open.stop();
    upstream = await startCistern({ auth: { enabled: true }, aws: { region: 'eu-west-1', accountId: '123456789012' } }, dir, clock);
    await upstream.app.identities.createUser('puller', [
      { Statement: [{ Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: '*' }] },
    ]);
    key = await upstream.app.identities.createKey('puller');
  });
  after(async () => {
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cacheOf = (accessToken: string) =>
    startCistern(
      { registries: { ecr: { registry: upstream.url, kind: 'ecr', region: 'eu-west-1', username: key.accessKeyId, accessToken } } },
      undefined,
      clock,
    );
  const tokenCalls = () => upstream.logs.filter((l) => l['method'] === 'POST' && l['path'] === '/' && l['status'] === 200).length;

  it('trades the access key for a registry password once, and pulls with it', async () => {
    const cache = await cacheOf(key.secretAccessKey);
    try {
      const before = tokenCalls();
      assert.equal((await pull(cache.url, 'ecr/team/app', 'v1')).digest, pushed['team/app']);
      assert.equal((await pull(cache.url, 'ecr/team/db', 'v1')).digest, pushed['team/db']);
      assert.equal(tokenCalls() - before, 1, 'one GetAuthorizationToken for every request until it nears expiry');
    } finally {
      await cache.stop();
    }
  });

  it('asks for a new password shortly before the old one expires', async () => {
    const cache = await cacheOf(key.secretAccessKey);
    try {
      await pull(cache.url, 'ecr/team/app', 'v1');
      const before = tokenCalls();
      offset += 12 * HOUR - 5 * 60_000;
      // The tag is stale by now (6 h window): revalidating it needs the upstream, so a new password.
      assert.equal((await pull(cache.url, 'ecr/team/app', 'v1')).digest, pushed['team/app']);
      assert.equal(tokenCalls() - before, 1);
    } finally {
      await cache.stop();
    }
  });

  it('asks for a new password when the registry refuses the one it has', async () => {
    const cache = await cacheOf(key.secretAccessKey);
    try {
      await pull(cache.url, 'ecr/team/app', 'v1');
      // The upstream forgets every password it issued (as a registry does whose signing key changed).
      const db = await openMetadata(upstream);
      await db.identities.deleteExpiredLoginTokens(new Date(8.64e15));
      await db.close();
      offset += HOUR; // past the cached bearer token and the upstream's 10 s memory of verified callers
      const before = tokenCalls();
      const refused = await fetch(`${cache.url}/v2/ecr/team/db/manifests/v1`);
      assert.equal(refused.status, 502);
      assert.match(await refused.text(), /refused our credentials/);
      assert.equal((await pull(cache.url, 'ecr/team/db', 'v1')).digest, pushed['team/db']);
      assert.equal(tokenCalls() - before, 1, 'one new password, then pulls work again');
    } finally {
      await cache.stop();
    }
  });

  it('a wrong secret is an upstream error that names the refusal, never the key', async () => {
    const cache = await cacheOf('not-the-secret-access-key');
    try {
      const res = await fetch(`${cache.url}/v2/ecr/team/app/manifests/v1`);
      const body = await res.text();
      assert.equal(res.status, 502, body);
      assert.match(body, /upstream ecr failed: ECR GetAuthorizationToken refused our access key \(InvalidSignatureException\)/);
      const everything = body + JSON.stringify(cache.logs);
      assert.ok(!everything.includes('not-the-secret-access-key'));
    } finally {
      await cache.stop();
    }
  });

  it('a registry without ECR\'s API, or an API that cannot be reached, is an upstream error naming it', async () => {
    // kind: ecr pointed at a registry that asks for Basic auth but has no GetAuthorizationToken.
    const plain = await startFakeUpstream({ auth: 'basic', users: { AKIAEXAMPLE: 'secret' } });
    const notEcr = await startCistern({ registries: { ecr: { registry: plain.url, kind: 'ecr', username: 'AKIAEXAMPLE', accessToken: 'secret' } } });
    try {
      const res = await fetch(`${notEcr.url}/v2/ecr/team/app/manifests/v1`);
      assert.equal(res.status, 502);
      assert.match(await res.text(), new RegExp(`upstream ecr failed: no ECR API at ${plain.url} \\(POST answered \\d+\\)`));
    } finally {
      await notEcr.stop();
      await plain.stop();
    }
    // The exchange itself, against a port nobody listens on.
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const dispatcher = new Agent();
    try {
      const ecr = ecrCredential({
        name: 'ecr',
        registryUrl: `http://127.0.0.1:${closed}`,
        credential: async () => ({ username: 'AKIAEXAMPLE', accessToken: 'secret' }),
        dispatcher,
        timeoutMs: 2000,
        now: Date.now,
      });
      await assert.rejects(ecr.credential(), (err: UpstreamFailure) => err.fault === 'unreachable' && /^upstream ecr failed: ECR API unreachable \(ECONNREFUSED\)$/.test(err.message));
    } finally {
      await dispatcher.close();
    }
  });
});
