import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { startCistern } from '../helpers/cistern.ts';
import { blob, pushBlob } from '../helpers/oci.ts';

describe('HTTP server', () => {
  it('logs one line per request with method, path, status, bytes, duration and request id', async () => {
    const cistern = await startCistern();
    try {
      const res = await fetch(`${cistern.url}/v2/some/repo/tags/list?n=5`, { headers: { 'X-Request-Id': 'trace-123' } });
      assert.equal(res.headers.get('x-request-id'), 'trace-123');
      await res.arrayBuffer();
      const generated = await fetch(`${cistern.url}/v2/`);
      const id = generated.headers.get('x-request-id');
      assert.ok(id && id !== 'trace-123');
      await cistern.stop();
      const lines = cistern.logs.filter((l) => l.msg === 'request');
      assert.equal(lines.length, 2);
      const first = lines.find((l) => l.reqId === 'trace-123')!;
      assert.equal(first.method, 'GET');
      assert.equal(first.path, '/v2/some/repo/tags/list', 'the query string is not logged');
      assert.equal(first.status, 404);
      assert.ok((first.bytes as number) > 0);
      assert.equal(typeof first.ms, 'number');
      assert.ok(lines.some((l) => l.reqId === id && l.status === 200));
    } finally {
      await cistern.stop().catch(() => {});
    }
  });

  it('refuses a hostile request id and makes its own', async () => {
    const cistern = await startCistern();
    try {
      const res = await fetch(`${cistern.url}/v2/`, { headers: { 'X-Request-Id': 'evil\tid with spaces' } });
      assert.notEqual(res.headers.get('x-request-id'), 'evil\tid with spaces');
    } finally {
      await cistern.stop();
    }
  });

  it('answers liveness and readiness probes without credentials, and says nothing else', async () => {
    const cistern = await startCistern({ auth: { enabled: true } });
    try {
      assert.equal((await fetch(`${cistern.url}/v2/`)).status, 401, 'auth is on');
      for (const path of ['/livez', '/readyz']) {
        const res = await fetch(`${cistern.url}${path}`);
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.equal(await res.text(), 'ok\n');
      }
    } finally {
      await cistern.stop();
    }
  });

  it('shuts down gracefully: an in-flight download finishes, new connections are refused', async () => {
    const cistern = await startCistern();
    const b = blob('graceful', 16 << 20);
    await pushBlob(cistern.url, 'graceful', b);
    const { hostname, port } = new URL(cistern.url);
    let startClosing!: () => void;
    const closing = new Promise<void>((resolve) => (startClosing = resolve));
    const download = new Promise<{ digest: string; length: number }>((resolve, reject) => {
      get({ host: hostname, port, path: `/v2/graceful/blobs/${b.digest}` }, (res) => {
        const hash = createHash('sha256');
        let length = 0;
        res.pause();
        // Read slowly so that shutdown begins mid-transfer.
        const timer = setInterval(() => {
          let chunk: Buffer | null;
          while ((chunk = res.read(256 * 1024) as Buffer | null)) {
            hash.update(chunk);
            length += chunk.length;
          }
        }, 10);
        res.on('end', () => {
          clearInterval(timer);
          resolve({ digest: `sha256:${hash.digest('hex')}`, length });
        });
        res.on('error', reject);
        setTimeout(startClosing, 50);
      }).on('error', reject);
    });
    await closing;
    const closed = cistern.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await assert.rejects(fetch(`${cistern.url}/v2/`), 'new connections are refused while draining');
    const result = await download;
    assert.equal(result.length, b.size);
    assert.equal(result.digest, b.digest);
    await closed;
  });
});
