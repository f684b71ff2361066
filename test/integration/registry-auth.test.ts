import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openMetadata, startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pushImage, errorCode, blob, body } from '../helpers/oci.ts';
import { buildImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const allow = (...actions: string[]) => [{ Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }];
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('registry authentication and permissions', () => {
  let cistern: TestCistern;
  let upstream: FakeUpstream;
  let clock = Date.parse('2026-12-01T00:00:00Z');
  let admin: { accessKeyId: string; secretAccessKey: string };
  let reader: { accessKeyId: string; secretAccessKey: string };
  const cached = buildImage({ seed: 'auth-cached', layers: [{ size: 1000, compress: false }] });
  const cold = buildImage({ seed: 'auth-cold', layers: [{ size: 1000, compress: false }] });

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'none' });
    upstream.addImage('library/cached', 'v1', cached);
    upstream.addImage('library/cold', 'v1', cold);
    cistern = await startCistern(
      {
        auth: { enabled: true, anonymous: [{ prefix: 'public', actions: ['pull'] }], tokenLifetime: '5m' },
        registries: { hub: { registry: upstream.url, kind: 'docker-hub' } },
      },
      undefined,
      () => new Date(clock),
    );
    await cistern.app.identities.createUser('admin', allow('ecr:*'));
    await cistern.app.identities.createUser('reader', allow('ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken'));
    admin = await cistern.app.identities.createKey('admin');
    reader = await cistern.app.identities.createKey('reader');
  });
  after(async () => {
    await cistern.stop();
    await upstream.stop();
  });

  const as = (key: { accessKeyId: string; secretAccessKey: string }) => ({ Authorization: basic(key.accessKeyId, key.secretAccessKey) });

  it('challenges anonymous callers and accepts access keys with Basic', async () => {
    const anonymous = await fetch(`${cistern.url}/v2/`);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), `Bearer realm="${cistern.url}/v2/token",service="cistern"`);
    assert.equal((await fetch(`${cistern.url}/v2/`, { headers: as(admin) })).status, 200);
    const wrong = await fetch(`${cistern.url}/v2/`, { headers: { Authorization: basic(admin.accessKeyId, 'not-the-secret') } });
    assert.equal(wrong.status, 401);
    const body = await wrong.text();
    assert.ok(!body.includes('not-the-secret') && !body.includes(admin.secretAccessKey));
  });

  it('stops accepting a deleted access key within seconds', async () => {
    await cistern.app.identities.createUser('temporary', allow('ecr:BatchGetImage'));
    const key = await cistern.app.identities.createKey('temporary');
    assert.equal((await fetch(`${cistern.url}/v2/`, { headers: as(key) })).status, 200);
    const db = await openMetadata(cistern);
    await db.identities.deleteKey(key.accessKeyId);
    await db.close();
    clock += 11_000;
    assert.equal((await fetch(`${cistern.url}/v2/`, { headers: as(key) })).status, 401);
  });

  it('refuses an anonymous push with a challenge naming the scope, and a reader push with DENIED', async () => {
    const anonymous = await fetch(`${cistern.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /scope="repository:team\/app:push"/);
    const denied = await fetch(`${cistern.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: as(reader) });
    assert.equal(denied.status, 403);
    const body = (await denied.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, /ecr:PutImage/);
  });

  it('issues scoped bearer tokens that grant only what the policy allows, and expire', async () => {
    const res = await fetch(`${cistern.url}/v2/token?service=cistern&scope=repository:team/app:pull,push`, { headers: as(reader) });
    assert.equal(res.status, 200);
    const { token, expires_in } = (await res.json()) as { token: string; expires_in: number };
    assert.equal(expires_in, 300);
    const bearer = { Authorization: `Bearer ${token}` };
    assert.equal((await fetch(`${cistern.url}/v2/team/app/tags/list`, { headers: bearer })).status, 404, 'pull granted (the repository is just empty)');
    assert.equal((await fetch(`${cistern.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: bearer })).status, 403, 'push was cut from the token');
    assert.equal((await fetch(`${cistern.url}/v2/team/other/tags/list`, { headers: bearer })).status, 403, 'another repository');
    assert.equal((await fetch(`${cistern.url}/v2/token?scope=repository:x:pull`, { headers: { Authorization: basic(reader.accessKeyId, 'wrong') } })).status, 401);
    clock += 6 * 60_000;
    assert.equal((await fetch(`${cistern.url}/v2/team/app/tags/list`, { headers: bearer })).status, 401, 'expired');
    const tampered = `${token.slice(0, -4)}AAAA`;
    assert.equal((await fetch(`${cistern.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${tampered}` } })).status, 401);
  });

  it('lets the admin push with a token, and accepts AWS plus a GetAuthorizationToken password', async () => {
    const res = await fetch(`${cistern.url}/v2/token?scope=repository:team/app:pull,push`, { headers: as(admin) });
    const { token } = (await res.json()) as { token: string };
    const headers = { Authorization: `Bearer ${token}` };
    const upload = await fetch(`${cistern.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers });
    assert.equal(upload.status, 202);
    const { token: password } = await cistern.app.identities.issueLoginToken('reader');
    assert.equal((await fetch(`${cistern.url}/v2/`, { headers: { Authorization: basic('AWS', password) } })).status, 200);
    assert.equal((await fetch(`${cistern.url}/v2/`, { headers: { Authorization: basic('AWS', `${password}x`) } })).status, 401);
  });

  it('a read-only identity pulls what is cached but may not import from upstream, and upstream sees nothing', async () => {
    const adminHeaders = as(admin);
    assert.equal((await fetch(`${cistern.url}/v2/hub/cached/manifests/v1`, { headers: adminHeaders })).status, 200);
    upstream.reset();
    const cachedPull = await fetch(`${cistern.url}/v2/hub/cached/manifests/v1`, { headers: as(reader) });
    assert.equal(cachedPull.status, 200);
    const coldPull = await fetch(`${cistern.url}/v2/hub/cold/manifests/v1`, { headers: as(reader) });
    assert.equal(coldPull.status, 403);
    const body = (await coldPull.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, /ecr:BatchImportUpstreamImage/);
    assert.equal(upstream.requests.length, 0);
  });

  it('importing into a repository that does not exist yet also needs ecr:CreateRepository', async () => {
    await cistern.app.identities.createUser('importer', allow('ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage'));
    const importer = await cistern.app.identities.createKey('importer');
    upstream.addImage('library/cached', 'v2', cold);
    upstream.reset();
    assert.equal((await fetch(`${cistern.url}/v2/hub/cached/manifests/v2`, { headers: as(importer) })).status, 200, 'an existing repository');
    const fresh = await fetch(`${cistern.url}/v2/hub/cold/manifests/v1`, { headers: as(importer) });
    assert.equal(fresh.status, 403);
    assert.match(((await fresh.json()) as { errors: { message: string }[] }).errors[0]!.message, /ecr:CreateRepository/);
    assert.equal(upstream.count({ repo: 'library/cold' }), 0);
  });

  it('mounts only from repositories the caller may pull from', async () => {
    await cistern.app.identities.createUser('teamer', [{ Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: 'arn:aws:ecr:us-east-1:000000000000:repository/team/*' }] }]);
    const teamer = await cistern.app.identities.createKey('teamer');
    const secret = blob('mount/secret', 1000);
    const shared = blob('mount/shared', 1000);
    const adminHeaders = as(admin);
    for (const [repo, b] of [['secret/repo', secret], ['team/source', shared]] as const) {
      const res = await fetch(`${cistern.url}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', headers: adminHeaders, body: body(b.bytes) });
      assert.equal(res.status, 201);
    }
    const refused = await fetch(`${cistern.url}/v2/team/target/blobs/uploads/?mount=${secret.digest}&from=secret/repo`, { method: 'POST', headers: as(teamer) });
    assert.equal(refused.status, 202, 'falls back to an upload: the secret blob is not handed over');
    assert.equal((await fetch(`${cistern.url}/v2/team/target/blobs/${secret.digest}`, { method: 'HEAD', headers: as(teamer) })).status, 404);
    const mounted = await fetch(`${cistern.url}/v2/team/target/blobs/uploads/?mount=${shared.digest}&from=team/source`, { method: 'POST', headers: as(teamer) });
    assert.equal(mounted.status, 201);
  });

  it('allows anonymous pulls where the config says so, and nothing else', async () => {
    await pushImage(cistern.url, 'public/site', 'v1', 'public-site').catch(() => undefined);
    const put = await fetch(`${cistern.url}/v2/public/site/blobs/uploads/`, { method: 'POST' });
    assert.equal(put.status, 401);
    const { token } = (await (await fetch(`${cistern.url}/v2/token?scope=repository:public/site:pull,push`)).json()) as { token: string };
    const headers = { Authorization: `Bearer ${token}` };
    assert.equal(await errorCode(await fetch(`${cistern.url}/v2/public/site/tags/list`, { headers })), 'NAME_UNKNOWN', 'anonymous pull allowed');
    const anonymousPush = await fetch(`${cistern.url}/v2/public/site/blobs/uploads/`, { method: 'POST', headers });
    assert.equal(anonymousPush.status, 401, 'an anonymous token short of push is told to log in');
    assert.match(anonymousPush.headers.get('www-authenticate') ?? '', /scope="repository:public\/site:push"/);
    assert.equal((await fetch(`${cistern.url}/v2/private/site/tags/list`)).status, 401);
    assert.equal((await fetch(`${cistern.url}/v2/_catalog`)).status, 401);
    assert.equal((await fetch(`${cistern.url}/v2/_catalog`, { headers: as(reader) })).status, 403);
    assert.equal((await fetch(`${cistern.url}/v2/_catalog`, { headers: as(admin) })).status, 200);
  });
});
