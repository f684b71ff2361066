import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startApp, type App } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';

export interface TestCistern {
  app: App;
  url: string;
  /** host:port, as registry clients name it. */
  host: string;
  directory: string;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Cistern in this process on an ephemeral loopback port, with its own temporary storage. */
export async function startCistern(overrides: Record<string, unknown> = {}, directory?: string, now?: () => Date): Promise<TestCistern> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), 'cistern-test-')));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseConfig({
    http: { host: '127.0.0.1', port: 0, shutdownGrace: '5s' },
    storage: { directory: dir },
    log: { level: 'info' },
    // The registry's own behaviour is tested open; auth has its own tests, which pass `auth`.
    auth: { enabled: false },
    ...overrides,
  });
  const app = await startApp(config, { log: pino({ level: 'info', base: undefined }, sink), ...(now && { now }) });
  return {
    app,
    url: app.url,
    host: new URL(app.url).host,
    directory: dir,
    logs,
    async stop() {
      await app.close();
      if (!directory) {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
