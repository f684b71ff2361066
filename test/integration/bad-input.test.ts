import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import { MediaType } from '../../src/domain/media-types.ts';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { blob, pushBlob, sha256 } from '../helpers/oci.ts';

interface Case {
  what: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  status: number;
  code: string;
}

const digest = sha256('x');
const hostileNames = ['..%2Fx', 'a//b', 'UPPER', 'a'.repeat(256), 'a%00b', 'a/', '-a', 'a..b', 'a___b', '.hidden', 'a/../b', 'a%2F..%2Fb'];
const hostileDigests = ['sha256:xyz', `sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'sha256:..%2F..%2Fetc', 'nocolon', `sha256:${'a'.repeat(64)}%00`];
const hostileTags = ['-tag', 'tag!', 't'.repeat(129), '.dot'];

function manifestBody(patch: Record<string, unknown>): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: 1 },
    layers: [],
    ...patch,
  });
}

const cases: Case[] = [
  ...hostileNames.flatMap((name): Case[] => [
    { what: `manifest GET ${name}`, method: 'GET', path: `/v2/${name}/manifests/latest`, status: 400, code: 'NAME_INVALID' },
    { what: `manifest PUT ${name}`, method: 'PUT', path: `/v2/${name}/manifests/latest`, body: manifestBody({}), status: 400, code: 'NAME_INVALID' },
    { what: `blob GET ${name}`, method: 'GET', path: `/v2/${name}/blobs/${digest}`, status: 400, code: 'NAME_INVALID' },
    { what: `upload POST ${name}`, method: 'POST', path: `/v2/${name}/blobs/uploads/`, status: 400, code: 'NAME_INVALID' },
    { what: `tags ${name}`, method: 'GET', path: `/v2/${name}/tags/list`, status: 400, code: 'NAME_INVALID' },
  ]),
  ...hostileDigests.flatMap((d): Case[] => [
    { what: `blob GET ${d}`, method: 'GET', path: `/v2/ok/blobs/${d}`, status: 400, code: 'DIGEST_INVALID' },
    ...(d.includes(':') ? [{ what: `manifest GET ${d}`, method: 'GET', path: `/v2/ok/manifests/${d}`, status: 400, code: 'DIGEST_INVALID' }] : []),
    { what: `monolithic POST ${d}`, method: 'POST', path: `/v2/ok/blobs/uploads/?digest=${d}`, body: 'x', status: 400, code: 'DIGEST_INVALID' },
    { what: `referrers ${d}`, method: 'GET', path: `/v2/ok/referrers/${d}`, status: 400, code: 'DIGEST_INVALID' },
  ]),
  ...hostileTags.map((tag): Case => ({ what: `tag ${tag}`, method: 'PUT', path: `/v2/ok/manifests/${tag}`, body: manifestBody({}), status: 400, code: 'TAG_INVALID' })),
  ...[
    ['not JSON', '{"schemaVersion": 2,'],
    ['a JSON array', '[]'],
    ['a JSON string', '"manifest"'],
    ['no layers', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: 'x', digest, size: 1 } })],
    ['schemaVersion 1', manifestBody({ schemaVersion: 1 })],
    ['a malformed layer digest', manifestBody({ layers: [{ mediaType: 'x', digest: 'sha256:nope', size: 1 }] })],
    ['a negative size', manifestBody({ layers: [{ mediaType: 'x', digest, size: -1 }] })],
    ['a fractional size', manifestBody({ layers: [{ mediaType: 'x', digest, size: 1.5 }] })],
    ['a string size', manifestBody({ layers: [{ mediaType: 'x', digest, size: '1' }] })],
    ['non-string annotations', manifestBody({ annotations: { a: 1 } })],
    ['a numeric mediaType', manifestBody({ mediaType: 7 })],
    ['an unknown mediaType', manifestBody({ mediaType: 'application/x-unknown' })],
    ['an index with a bad child', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ digest }] })],
    ['nothing recognisable', JSON.stringify({ schemaVersion: 2 })],
  ].map(([what, body]): Case => ({
    what: `manifest with ${what}`,
    method: 'PUT',
    path: '/v2/ok/manifests/v1',
    headers: { 'Content-Type': 'application/json' },
    body: body!,
    status: 400,
    code: 'MANIFEST_INVALID',
  })),
  { what: 'oversized manifest', method: 'PUT', path: '/v2/ok/manifests/v1', body: Buffer.alloc(5 << 20, 0x7b), status: 413, code: 'SIZE_INVALID' },
  { what: 'hostile upload id', method: 'PATCH', path: '/v2/ok/blobs/uploads/..%2F..%2Fmetadata.db', body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { what: 'unknown upload id', method: 'GET', path: '/v2/ok/blobs/uploads/00000000-0000-0000-0000-000000000000', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { what: 'POST on a manifest', method: 'POST', path: '/v2/ok/manifests/v1', status: 405, code: 'UNSUPPORTED' },
  { what: 'an unknown endpoint', method: 'GET', path: '/v2/ok/unknown/thing', status: 404, code: 'UNSUPPORTED' },
  { what: 'a malformed escape', method: 'GET', path: '/v2/ok%zz/tags/list', status: 404, code: 'UNSUPPORTED' },
];

describe('bad input gets the spec error and leaves nothing behind', () => {
  let cistern: TestCistern;
  before(async () => {
    cistern = await startCistern();
  });
  after(() => cistern.stop());

  for (const c of cases) {
    it(`${c.what} → ${c.status} ${c.code}`, async () => {
      const res = await raw(cistern.url, c);
      assert.equal(res.status, c.status, res.body);
      const parsed = JSON.parse(res.body) as { errors: { code: string; message: string }[] };
      assert.equal(parsed.errors[0]?.code, c.code);
      assert.ok(parsed.errors[0]?.message);
      assert.doesNotMatch(res.body, /at .*\.ts:\d+|node:internal|Error:/, 'no stack traces');
    });
  }

  it('answers an unparseable upload Content-Range with 416 and a mismatched length with SIZE_INVALID', async () => {
    const start = await fetch(`${cistern.url}/v2/chunks/blobs/uploads/`, { method: 'POST' });
    const location = `${cistern.url}${start.headers.get('location')}`;
    const bad = await fetch(location, { method: 'PATCH', headers: { 'Content-Range': 'bytes=a-b' }, body: 'abc' });
    assert.equal(bad.status, 416);
    const mismatch = await fetch(location, { method: 'PATCH', headers: { 'Content-Range': '0-9' }, body: 'abc' });
    assert.equal(mismatch.status, 400);
    assert.equal(((await mismatch.json()) as { errors: { code: string }[] }).errors[0]?.code, 'SIZE_INVALID');
    const status = await fetch(location);
    assert.equal(status.headers.get('range'), '0-0', 'nothing was appended');
    await fetch(location, { method: 'DELETE' });
  });

  it('answers an error to HEAD with the status and no body', async () => {
    const res = await fetch(`${cistern.url}/v2/ok/manifests/missing`, { method: 'HEAD' });
    assert.equal(res.status, 404);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  it('left no repository, upload or internal error behind', async () => {
    // A valid blob proves the store still works after the barrage.
    await pushBlob(cistern.url, 'after', blob('after'));
    const catalog = (await (await fetch(`${cistern.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['after']);
    assert.deepEqual(await readdir(join(cistern.directory, 'uploads')), []);
    assert.equal(cistern.logs.filter((l) => (l.level as number) >= 50).length, 0, 'no errors logged');
    assert.equal(cistern.logs.filter((l) => l.status === 500).length, 0);
  });
});

/** node:http rather than fetch, so paths reach the server exactly as written. */
function raw(base: string, c: Case): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method: c.method, path: c.path, headers: c.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(c.body);
  });
}
