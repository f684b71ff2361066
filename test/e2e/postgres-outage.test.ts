/**
 * PostgreSQL goes away under a running Cistern (a failover, a restart): requests that need it get 503
 * UNAVAILABLE, which clients retry, never a 500 nor a crash; what is held in memory is still served; and
 * when the database is back, Cistern is too, without a restart. The outage is a TCP relay in front of
 * the real server that the test stops and starts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pushImage } from '../helpers/oci.ts';
import { dropSchema, freshSchema, POSTGRES_URL, requirePostgres } from '../helpers/postgres.ts';

const TARGET = new URL(POSTGRES_URL);

/**
 * A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored, or
 * stalled (nothing forwarded, new connections accepted and left hanging: a database that does not answer).
 */
class Relay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private stalled = false;
  port = 0;

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      if (this.stalled) {
        this.sockets.add(client.on('close', () => this.sockets.delete(client)).on('error', () => {}));
        return;
      }
      const upstream = net.connect(Number(TARGET.port || 5432), TARGET.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  stall(): void {
    this.stalled = true;
    for (const socket of this.sockets) socket.pause();
  }

  async cut(): Promise<void> {
    this.stalled = false;
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  url(): string {
    const url = new URL(TARGET.href);
    url.port = String(this.port);
    return url.href;
  }
}

async function eventually(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

describe('PostgreSQL outage under a running instance', { timeout: 60_000 }, () => {
  const schema = freshSchema();
  const relay = new Relay();
  let dir: string;
  let cistern: TestCistern;

  before(async () => {
    await requirePostgres();
    await relay.start();
    dir = await mkdtemp(join(tmpdir(), 'cistern-pg-outage-'));
    cistern = await startCistern({ storage: { directory: dir, metadata: { driver: 'postgres', url: relay.url(), schema } } }, dir);
  });
  after(async () => {
    await relay.start().catch(() => undefined);
    await cistern?.stop();
    await relay.cut();
    await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 while the database is gone, serves what it holds in memory, and recovers by itself', async () => {
    const image = await pushImage(cistern.url, 'team/app', 'v1', 'pg-outage/app');
    assert.equal((await fetch(`${cistern.url}/v2/team/app/manifests/v1`)).status, 200);

    await relay.cut();
    const unknown = await fetch(`${cistern.url}/v2/team/app/manifests/never-seen`);
    assert.equal(unknown.status, 503);
    const body = (await unknown.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'UNAVAILABLE');
    assert.match(body.errors[0]!.message, /metadata store is unavailable/);
    assert.equal((await fetch(`${cistern.url}/v2/team/other/blobs/uploads/`, { method: 'POST' })).status, 503);
    const readiness = await fetch(`${cistern.url}/readyz`);
    assert.equal(readiness.status, 503, 'a load balancer stops sending requests here');
    assert.equal(await readiness.text(), 'metadata store unavailable\n');
    assert.equal((await fetch(`${cistern.url}/livez`)).status, 200, 'but nothing should restart it');
    const held = await fetch(`${cistern.url}/v2/team/app/manifests/v1`);
    assert.equal(held.status, 200, 'a manifest held in memory is still served');
    assert.equal(held.headers.get('docker-content-digest'), image.digest);
    assert.ok(cistern.logs.some((l) => l['msg'] === 'internal error' && JSON.stringify(l).includes('unavailable')), 'the outage is logged');

    await relay.start();
    assert.ok(
      await eventually(10_000, async () => (await fetch(`${cistern.url}/v2/team/app/manifests/never-seen`)).status === 404),
      'requests reach the database again',
    );
    assert.equal((await fetch(`${cistern.url}/readyz`)).status, 200);
    const pushed = await pushImage(cistern.url, 'team/after', 'v1', 'pg-outage/after');
    assert.equal((await fetch(`${cistern.url}/v2/team/after/manifests/v1`)).headers.get('docker-content-digest'), pushed.digest);
  });

  it('is not ready while the database does not answer at all, and says so within the probe\'s time', async () => {
    assert.equal((await fetch(`${cistern.url}/readyz`)).status, 200);
    relay.stall();
    // A query that succeeded in the last 5 s answers for the database; wait until none has.
    await new Promise((resolve) => setTimeout(resolve, 5_200));
    const started = Date.now();
    const readiness = await fetch(`${cistern.url}/readyz`);
    assert.equal(readiness.status, 503);
    assert.equal(await readiness.text(), 'metadata store unavailable\n');
    assert.ok(Date.now() - started < 4_000, 'the probe gives up after its 2 s, not pg\'s 30 s');
    await relay.cut();
    await relay.start();
    assert.ok(await eventually(10_000, async () => (await fetch(`${cistern.url}/readyz`)).status === 200), 'ready again');
  });
});
