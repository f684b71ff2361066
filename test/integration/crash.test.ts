import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCisternProcess, type CisternProcess } from '../helpers/cistern-process.ts';
import { blob, body, pushBlob, pushImage } from '../helpers/oci.ts';

const MiB = 1 << 20;

/** Deterministic bytes in 1 MiB chunks, so large blobs never sit in memory whole. */
function* chunks(seed: string, size: number, from = 0): Generator<Buffer> {
  for (let offset = Math.floor(from / MiB) * MiB; offset < size; offset += MiB) {
    const chunk = Buffer.alloc(Math.min(MiB, size - offset));
    createHash('sha256').update(`${seed}/${offset}`).digest().copy(chunk);
    chunk.fill(offset / MiB, 32);
    yield offset < from ? chunk.subarray(from - offset) : chunk;
  }
}

function digestOfChunks(seed: string, size: number): string {
  const hash = createHash('sha256');
  for (const chunk of chunks(seed, size)) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** Streams `body` as one request; resolves with the status, or with the error if the server vanishes. */
function send(url: string, method: string, body: Iterable<Buffer>, headers: Record<string, string> = {}, onProgress?: (sent: number) => void) {
  return new Promise<{ status?: number; error?: Error }>((resolve) => {
    const req = request(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('error', (error) => resolve({ error }));
    const iterator = body[Symbol.iterator]();
    let sent = 0;
    const pump = () => {
      for (;;) {
        const next = iterator.next();
        if (next.done) return void req.end();
        sent += next.value.length;
        onProgress?.(sent);
        if (req.destroyed) return;
        if (!req.write(next.value)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every blob file on disk is complete: its content hashes to its name. */
async function assertNoPartialBlobs(directory: string): Promise<number> {
  const root = join(directory, 'blobs', 'sha256');
  let count = 0;
  for (const prefix of await readdir(root).catch(() => [])) {
    for (const hex of await readdir(join(root, prefix))) {
      assert.equal(await sha256File(join(root, prefix, hex)), hex, `blob ${hex} is damaged`);
      count++;
    }
  }
  return count;
}

/** Every tagged manifest is fully pullable and every blob it names verifies. */
async function assertPullable(base: string): Promise<number> {
  const catalog = (await (await fetch(`${base}/v2/_catalog`)).json()) as { repositories: string[] };
  let manifests = 0;
  for (const repo of catalog.repositories) {
    const list = await fetch(`${base}/v2/${repo}/tags/list`);
    const tags = list.status === 200 ? ((await list.json()) as { tags: string[] }).tags : [];
    for (const tag of tags) {
      const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`);
      assert.equal(res.status, 200);
      const manifest = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const { digest } of [manifest.config, ...manifest.layers]) {
        const got = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
        assert.equal(got.status, 200, `${repo}:${tag} lost ${digest}`);
        const actual = `sha256:${createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex')}`;
        assert.equal(actual, digest);
      }
      manifests++;
    }
  }
  return manifests;
}

describe('crash consistency: kill -9 at any moment', () => {
  let directory: string;
  let server: CisternProcess | undefined;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'cistern-crash-'));
  });
  after(async () => {
    await server?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('a kill during a large upload shows no blob, and the upload resumes where the disk says', async () => {
    server = await startCisternProcess(directory);
    const size = 96 * MiB;
    const seed = 'large-upload';
    const digest = digestOfChunks(seed, size);
    const start = await fetch(`${server.url}/v2/crash/large/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    let killed: Promise<void> | undefined;
    const victim = server;
    const result = await send(`${server.url}${location}`, 'PATCH', chunks(seed, size), {}, (sent) => {
      if (sent >= 40 * MiB && !killed) killed = victim.kill9();
    });
    await killed;
    assert.ok(result.error, 'the request died with the server');

    server = await startCisternProcess(directory);
    const head = await fetch(`${server.url}/v2/crash/large/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404, 'no partial blob is visible');
    const status = await fetch(`${server.url}${location}`);
    assert.equal(status.status, 204);
    const received = Number(status.headers.get('range')!.split('-')[1]) + 1;
    assert.ok(received > 0 && received <= 41 * MiB, `received ${received}`);

    const rest = await send(`${server.url}${location}`, 'PATCH', chunks(seed, size, received), {
      'Content-Range': `${received}-${size - 1}`,
      'Content-Length': String(size - received),
    });
    assert.equal(rest.status, 202);
    const done = await fetch(`${server.url}${location}?digest=${digest}`, { method: 'PUT' });
    assert.equal(done.status, 201);
    await assertNoPartialBlobs(directory);
    const hash = createHash('sha256');
    const get = await fetch(`${server.url}/v2/crash/large/blobs/${digest}`);
    for await (const chunk of get.body!) hash.update(chunk);
    assert.equal(`sha256:${hash.digest('hex')}`, digest);
    await server.stop();
    server = undefined;
  });

  it('a kill after verifying but before publishing a blob leaves it invisible, and the commit can be retried', async () => {
    server = await startCisternProcess(directory, { CISTERN_FAILPOINTS: 'blob-commit-before-rename' });
    const b = blob('before-rename', 2 * MiB);
    const start = await fetch(`${server.url}/v2/crash/commit/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    await fetch(`${server.url}${location}`, { method: 'PATCH', body: body(b.bytes) });
    const put = await fetch(`${server.url}${location}?digest=${b.digest}`, { method: 'PUT' }).catch((err: Error) => err);
    assert.ok(put instanceof Error, 'the server died mid-commit');
    assert.equal(await server.exited, 'SIGKILL');

    server = await startCisternProcess(directory);
    assert.equal((await fetch(`${server.url}/v2/crash/commit/blobs/${b.digest}`, { method: 'HEAD' })).status, 404);
    const retry = await fetch(`${server.url}${location}?digest=${b.digest}`, { method: 'PUT' });
    assert.equal(retry.status, 201);
    const get = await fetch(`${server.url}/v2/crash/commit/blobs/${b.digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), b.bytes);
    await server.stop();
    server = undefined;
  });

  for (const point of ['blob-commit-after-rename', 'upload-after-link']) {
    it(`a kill at ${point} leaves a consistent store, and the client's retry succeeds`, async () => {
      server = await startCisternProcess(directory, { CISTERN_FAILPOINTS: point });
      const b = blob(point, MiB);
      const res = await fetch(`${server.url}/v2/crash/${point}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: body(b.bytes) }).catch(
        (err: Error) => err,
      );
      assert.ok(res instanceof Error);
      assert.equal(await server.exited, 'SIGKILL');

      server = await startCisternProcess(directory);
      const head = await fetch(`${server.url}/v2/crash/${point}/blobs/${b.digest}`, { method: 'HEAD' });
      if (head.status === 200) {
        // Linked before the kill: then it must be whole.
        const get = await fetch(`${server.url}/v2/crash/${point}/blobs/${b.digest}`);
        assert.deepEqual(Buffer.from(await get.arrayBuffer()), b.bytes);
      } else {
        assert.equal(head.status, 404);
      }
      await pushBlob(server.url, `crash/${point}`, b);
      await assertNoPartialBlobs(directory);
      await server.stop();
      server = undefined;
    });
  }

  it('repeated kills during concurrent pushes never leave a damaged blob or an unpullable manifest', async () => {
    let pushed = 0;
    for (const [round, delay] of [120, 300, 650, 900].entries()) {
      server = await startCisternProcess(directory);
      const base = server.url;
      const pushers = Array.from({ length: 4 }, async (_, worker) => {
        for (let i = 0; ; i++) {
          try {
            await pushImage(base, `crash/round${round}/w${worker}`, `t${i}`, `r${round}w${worker}i${i}`, [MiB + i, 3 * MiB, 512 * 1024]);
            pushed++;
          } catch {
            return; // the server is gone
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, delay));
      await server.kill9();
      await Promise.all(pushers);
    }
    server = await startCisternProcess(directory);
    const blobs = await assertNoPartialBlobs(directory);
    const manifests = await assertPullable(server.url);
    assert.ok(blobs > 0 && manifests > 0, `checked ${blobs} blobs and ${manifests} manifests (${pushed} pushes completed)`);
    await pushImage(server.url, 'crash/after', 'v1', 'after-crashes');
    await server.stop();
    server = undefined;
  });
});

describe('crash consistency: garbage collection killed mid-sweep', () => {
  it('a GC killed after its first delete leaves a consistent store, and the next run finishes the job', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { fileURLToPath } = await import('node:url');
    const run = promisify(execFile);
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const directory = await mkdtemp(join(tmpdir(), 'cistern-gc-crash-'));
    try {
      let server = await startCisternProcess(directory);
      const kept = await pushImage(server.url, 'gc/kept', 'v1', 'gc-kept', [MiB, 64 * 1024]);
      for (let i = 0; i < 6; i++) await pushBlob(server.url, 'gc/orphans', blob(`gc-orphan-${i}`, 128 * 1024));
      await server.stop();
      // Grace 0 so the orphans are due at once; the config file is the one the test server used.
      const config = join(directory, 'cistern.yaml');
      const { readFile, writeFile } = await import('node:fs/promises');
      await writeFile(config, `${await readFile(config, 'utf8')}gc: { grace: 0s }\n`);
      const cli = (env: Record<string, string> = {}) => run(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), 'gc', '--config', config], { cwd: root, env: { ...process.env, ...env } });
      await assert.rejects(cli({ CISTERN_FAILPOINTS: 'gc-after-delete' }), (err: { signal?: string }) => err.signal === 'SIGKILL');
      const afterCrash = await assertNoPartialBlobs(directory);
      const { stdout } = await cli();
      assert.match(stdout, /reclaimed 5 blobs/);
      assert.equal(await assertNoPartialBlobs(directory), afterCrash - 5);
      server = await startCisternProcess(directory);
      try {
        assert.equal(await assertPullable(server.url), 1);
        const res = await fetch(`${server.url}/v2/gc/kept/manifests/v1`, { method: 'HEAD' });
        assert.equal(res.headers.get('docker-content-digest'), kept.digest);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
