// ApacheBench (ab) runner — used for HEAD load tests because wrk cannot do
// HEAD against servers that send Content-Length (see runWrk). ab is a single
// C thread with keep-alive (HTTP/1.0 + "Connection: Keep-Alive"), about as
// light per request as wrk. Percentiles come from its -e CSV (float ms).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, BrokenRunError } from './proc.ts';
import type { LoadResult } from './wrk.ts';

export interface AbOptions {
  url: string;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  concurrency: number;
  durationSec: number;
  timeoutSec?: number;
  /** Directory for the percentile CSV. */
  scratchDir: string;
}

const num = (text: string, re: RegExp): number | undefined => {
  const m = re.exec(text);
  return m?.[1] !== undefined ? Number(m[1]) : undefined;
};

/** Parse ab's text report plus its `-e` CSV ("Percentage served,Time in ms" rows 0..100). */
export function parseAbOutput(text: string, csv: string): Omit<LoadResult, 'invalid' | 'text' | 'tool'> & {
  keepAlive: number;
  failed: number;
} {
  const requests = num(text, /^Complete requests:\s+(\d+)/m);
  const durationSec = num(text, /^Time taken for tests:\s+([\d.]+) seconds/m);
  if (requests === undefined || durationSec === undefined) throw new BrokenRunError(`unexpected ab output:\n${text}`);
  const pct = new Map<number, number>();
  for (const line of csv.split('\n').slice(1)) {
    const [p, ms] = line.split(',');
    if (p !== undefined && ms !== undefined && p !== '') pct.set(Number(p), Number(ms));
  }
  const total = /^Total:\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)/m.exec(text);
  const failedBreakdown = /\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)/.exec(text);
  return {
    requests,
    durationSec,
    rps: durationSec > 0 ? requests / durationSec : 0,
    bytes: num(text, /^Total transferred:\s+(\d+) bytes/m) ?? 0,
    latency: {
      mean: total?.[2] !== undefined ? Number(total[2]) : Number.NaN,
      stdev: total?.[3] !== undefined ? Number(total[3]) : Number.NaN,
      p50: pct.get(50) ?? Number.NaN,
      p90: pct.get(90) ?? Number.NaN,
      p99: pct.get(99) ?? Number.NaN,
      max: pct.get(100) ?? Number.NaN,
    },
    errors: {
      connect: Number(failedBreakdown?.[1] ?? 0),
      read: Number(failedBreakdown?.[2] ?? 0),
      write: 0,
      timeout: Number(failedBreakdown?.[4] ?? 0),
      status: num(text, /^Non-2xx responses:\s+(\d+)/m) ?? 0,
    },
    non2xx: num(text, /^Non-2xx responses:\s+(\d+)/m) ?? 0,
    keepAlive: num(text, /^Keep-Alive requests:\s+(\d+)/m) ?? 0,
    failed: num(text, /^Failed requests:\s+(\d+)/m) ?? 0,
  };
}

let seq = 0;

export async function runAb(opts: AbOptions): Promise<LoadResult> {
  const csvPath = join(opts.scratchDir, `ab-${process.pid}-${++seq}.csv`);
  const duration = Math.max(1, Math.round(opts.durationSec));
  const timeout = opts.timeoutSec ?? 5;
  // -t alone caps the run at 50k requests; -n after -t lifts that (ab sizes a
  // per-request stats array from -n, ~50 B each, so keep it sane).
  const maxRequests = Math.max(1_000_000, 150_000 * duration);
  const args = ['-q', '-k', '-r', '-c', String(opts.concurrency), '-t', String(duration), '-n', String(maxRequests)];
  args.push('-s', String(timeout), '-e', csvPath);
  if ((opts.method ?? 'GET') === 'HEAD') args.push('-i');
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(opts.url);
  const res = await runCommand('ab', args, { timeoutMs: (duration + timeout + 30) * 1000 });
  if (res.code !== 0) {
    throw new BrokenRunError(`ab ${args.join(' ')} exited ${res.code ?? res.signal}: ${res.stderr}${res.stdout}`);
  }
  const csv = await readFile(csvPath, 'utf8').catch(() => '');
  const p = parseAbOutput(res.stdout, csv);
  const invalid: string[] = [];
  if (p.requests === 0) invalid.push('no requests completed');
  if (p.non2xx > 0) invalid.push(`${p.non2xx} non-2xx responses`);
  if (p.failed > 0) {
    invalid.push(
      `${p.failed} failed requests (connect ${p.errors.connect}, receive ${p.errors.read}, exceptions ${p.errors.timeout})`,
    );
  }
  if (p.requests > 0 && p.keepAlive < p.requests * 0.99) {
    // Without keep-alive every request pays a TCP handshake: not comparable.
    invalid.push(`only ${p.keepAlive}/${p.requests} requests reused a connection (no HTTP/1.0 keep-alive?)`);
  }
  const { keepAlive: _k, failed: _f, ...rest } = p;
  return { tool: 'ab', ...rest, invalid, text: res.stdout };
}
