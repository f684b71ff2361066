import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { blob, body, errorCode, pushBlob, sha256 } from '../helpers/oci.ts';

describe('OCI blobs and uploads', () => {
  let cistern: TestCistern;
  let base: string;
  before(async () => {
    cistern = await startCistern();
    base = cistern.url;
  });
  after(() => cistern.stop());

  const uploadFiles = () => readdir(join(cistern.directory, 'uploads'));

  async function startUpload(repo: string): Promise<string> {
    const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('range'), '0-0');
    assert.ok(res.headers.get('docker-upload-uuid'));
    const location = res.headers.get('location');
    assert.match(location ?? '', new RegExp(`^/v2/${repo}/blobs/uploads/[a-f0-9-]{36}$`));
    return `${base}${location}`;
  }

  it('serves a monolithic upload with GET and HEAD, and its headers', async () => {
    const b = blob('mono', 10_000);
    const res = await pushBlob(base, 'blobs/mono', b);
    assert.equal(res.headers.get('location'), `/v2/blobs/mono/blobs/${b.digest}`);
    assert.equal(res.headers.get('docker-content-digest'), b.digest);
    const get = await fetch(`${base}/v2/blobs/mono/blobs/${b.digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('accept-ranges'), 'bytes');
    assert.equal(get.headers.get('docker-content-digest'), b.digest);
    assert.equal(Number(get.headers.get('content-length')), b.size);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), b.bytes);
    const head = await fetch(`${base}/v2/blobs/mono/blobs/${b.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), b.size);
  });

  it('answers ranges with 206 and unsatisfiable ones with 416', async () => {
    const b = blob('ranged', 1000);
    await pushBlob(base, 'ranged', b);
    const url = `${base}/v2/ranged/blobs/${b.digest}`;
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=900-5000', 900, 999],
    ];
    for (const [range, start, end] of cases) {
      const res = await fetch(url, { headers: { Range: range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/1000`, range);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), b.bytes.subarray(start, end + 1), range);
    }
    for (const range of ['bytes=1000-', 'bytes=5-2', 'bytes=-0', 'bytes=0-1,5-6', 'items=0-1', 'bytes=abc']) {
      const res = await fetch(url, { headers: { Range: range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('content-range'), 'bytes */1000', range);
      assert.equal(await errorCode(res), 'RANGE_INVALID', range);
    }
  });

  it('uploads in chunks, reports status, and finishes with a digest check', async () => {
    const b = blob('chunked', 3000);
    const location = await startUpload('chunked');
    const first = await fetch(location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999', 'Content-Length': '1000' },
      body: body(b.bytes.subarray(0, 1000)),
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-999');

    const status = await fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-999');
    assert.equal(status.headers.get('location'), new URL(location).pathname);

    // A repeated chunk and a gap are both out of order.
    for (const range of ['0-999', '1500-2499']) {
      const [start, end] = range.split('-').map(Number) as [number, number];
      const res = await fetch(location, {
        method: 'PATCH',
        headers: { 'Content-Range': range },
        body: body(b.bytes.subarray(start, end + 1)),
      });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('range'), '0-999');
      assert.equal(await errorCode(res), 'RANGE_INVALID');
    }

    // A chunk without Content-Range is streamed onto the end.
    const second = await fetch(location, { method: 'PATCH', body: body(b.bytes.subarray(1000, 2000)) });
    assert.equal(second.headers.get('range'), '0-1999');
    const done = await fetch(`${location}?digest=${b.digest}`, {
      method: 'PUT',
      headers: { 'Content-Range': '2000-2999', 'Content-Length': '1000' },
      body: body(b.bytes.subarray(2000)),
    });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('location'), `/v2/chunked/blobs/${b.digest}`);
    const get = await fetch(`${base}/v2/chunked/blobs/${b.digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), b.bytes);
    // The session is finished.
    assert.equal((await fetch(location)).status, 404);
  });

  it('refuses a wrong digest and keeps nothing', async () => {
    const b = blob('wrong', 500);
    const before = await uploadFiles();
    const location = await startUpload('wrong');
    await fetch(location, { method: 'PATCH', body: body(b.bytes) });
    const claimed = sha256('something else');
    const res = await fetch(`${location}?digest=${claimed}`, { method: 'PUT' });
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'DIGEST_INVALID');
    assert.equal((await fetch(`${base}/v2/wrong/blobs/${claimed}`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(`${base}/v2/wrong/blobs/${b.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(location)).status, 404);
    assert.deepEqual((await uploadFiles()).sort(), before.sort());

    const mono = await fetch(`${base}/v2/wrong/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: body(b.bytes) });
    assert.equal(await errorCode(mono), 'DIGEST_INVALID');
    assert.deepEqual((await uploadFiles()).sort(), before.sort());
  });

  it('requires the digest to finish an upload', async () => {
    const location = await startUpload('nodigest');
    const res = await fetch(location, { method: 'PUT', body: 'abc' });
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'DIGEST_INVALID');
  });

  it('cancels an upload with DELETE', async () => {
    const location = await startUpload('cancel');
    await fetch(location, { method: 'PATCH', body: 'partial' });
    assert.equal((await fetch(location, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(location)).status, 404);
    const res = await fetch(location, { method: 'PATCH', body: 'more' });
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('keeps upload sessions to their repository', async () => {
    const location = await startUpload('sessions/a');
    const foreign = location.replace('/v2/sessions/a/', '/v2/sessions/b/');
    const res = await fetch(foreign, { method: 'PATCH', body: 'x' });
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('mounts a blob from another repository, and falls back to an upload when it cannot', async () => {
    const b = blob('mount', 700);
    await pushBlob(base, 'mount/source', b);
    const res = await fetch(`${base}/v2/mount/target/blobs/uploads/?mount=${b.digest}&from=mount/source`, { method: 'POST' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/mount/target/blobs/${b.digest}`);
    assert.equal((await fetch(`${base}/v2/mount/target/blobs/${b.digest}`, { method: 'HEAD' })).status, 200);

    const unknown = sha256('not anywhere');
    const fallback = await fetch(`${base}/v2/mount/target/blobs/uploads/?mount=${unknown}&from=mount/source`, { method: 'POST' });
    assert.equal(fallback.status, 202);
    assert.ok(fallback.headers.get('location')?.includes('/blobs/uploads/'));
  });

  it('deletes a blob from one repository only', async () => {
    const b = blob('shared', 300);
    await pushBlob(base, 'del/one', b);
    await pushBlob(base, 'del/two', b);
    assert.equal((await fetch(`${base}/v2/del/one/blobs/${b.digest}`, { method: 'DELETE' })).status, 202);
    const gone = await fetch(`${base}/v2/del/one/blobs/${b.digest}`);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'BLOB_UNKNOWN');
    assert.equal((await fetch(`${base}/v2/del/two/blobs/${b.digest}`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${base}/v2/del/one/blobs/${b.digest}`, { method: 'DELETE' })).status, 404);
  });

  it('expires abandoned upload sessions and their bytes', async () => {
    const location = await startUpload('abandoned');
    await fetch(location, { method: 'PATCH', body: 'some bytes' });
    const id = location.split('/').pop()!;
    assert.ok((await uploadFiles()).includes(id));
    const removed = await cistern.app.local.expireUploads(-1);
    assert.ok(removed >= 1);
    assert.ok(!(await uploadFiles()).includes(id));
    assert.equal((await fetch(location)).status, 404);
  });

  it('accepts an empty blob', async () => {
    const res = await fetch(`${base}/v2/empty/blobs/uploads/?digest=${sha256('')}`, { method: 'POST', body: '' });
    assert.equal(res.status, 201);
    const get = await fetch(`${base}/v2/empty/blobs/${sha256('')}`);
    assert.equal(get.status, 200);
    assert.equal((await get.arrayBuffer()).byteLength, 0);
  });
});
