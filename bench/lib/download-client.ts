// Child process: downloads `streams` copies of a URL concurrently, discarding
// the bytes (optionally hashing them). Protocol with the parent:
//   argv[2] = JSON DownloadClientArgs
//   child -> stdout "READY\n"; parent -> stdin "GO\n"; child -> stdout one JSON line (DownloadClientReport)
// Timestamps are performance.timeOrigin + performance.now() (ms), comparable across processes.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';

export interface DownloadClientArgs {
  url: string;
  streams: number;
  /** Hash the first stream's bytes (sha256). Costs CPU: use on untimed runs. */
  hash: boolean;
  headers?: Record<string, string>;
}

export interface StreamReport {
  status: number;
  bytes: number;
  startMs: number;
  endMs: number;
  sha256?: string;
  error?: string;
}

export interface DownloadClientReport {
  streams: StreamReport[];
}

const now = (): number => performance.timeOrigin + performance.now();

function downloadOne(args: DownloadClientArgs, hash: boolean): Promise<StreamReport> {
  return new Promise((resolve) => {
    const startMs = now();
    let bytes = 0;
    let status = 0;
    const h = hash ? createHash('sha256') : undefined;
    const fail = (err: Error): void => resolve({ status, bytes, startMs, endMs: now(), error: err.message });
    const req = http.get(args.url, { agent: false, headers: args.headers ?? {} }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        h?.update(chunk);
      });
      res.on('end', () => {
        const r: StreamReport = { status, bytes, startMs, endMs: now() };
        if (h !== undefined) r.sha256 = h.digest('hex');
        resolve(r);
      });
      res.on('error', fail);
      res.on('aborted', () => fail(new Error('response aborted')));
    });
    req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
    req.on('error', fail);
  });
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: download-client.ts <json args>');
  const args = JSON.parse(raw) as DownloadClientArgs;
  process.stdout.write('READY\n');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === 'GO') break;
  }
  rl.close();
  const streams = await Promise.all(
    Array.from({ length: args.streams }, (_, i) => downloadOne(args, args.hash && i === 0)),
  );
  const report: DownloadClientReport = { streams };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
