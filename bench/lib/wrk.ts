// wrk runner. A generated Lua script sets method/headers and, in done(),
// prints one machine-readable JSON line (requests, bytes, error counters,
// latency percentiles); the human-readable text is parsed as a cross-check.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, BrokenRunError } from './proc.ts';

export interface WrkOptions {
  url: string;
  /** GET only in practice: see the HEAD note in runWrk. */
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  threads: number;
  connections: number;
  durationSec: number;
  /** wrk's per-request timeout (requests slower than this count as timeouts). */
  timeoutSec?: number;
  /** Directory for the generated Lua script. */
  scriptDir: string;
}

/** Result of one load run (shared with ab.ts). */
export interface LoadResult {
  tool: 'wrk' | 'ab';
  requests: number;
  durationSec: number;
  rps: number;
  /** Bytes received (headers + bodies). */
  bytes: number;
  /** Milliseconds. */
  latency: { mean: number; stdev: number; p50: number; p90: number; p99: number; max: number };
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  /**
   * Non-2xx responses. wrk only counts status >= 400 here (its "Non-2xx or 3xx
   * responses"); ab counts everything but 2xx.
   */
  non2xx: number;
  /** Problems that make the figure untrustworthy (empty when fine). */
  invalid: string[];
  text: string;
}

export type WrkResult = LoadResult;

const MARK = '@@WRK_JSON@@';

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function wrkScript(method: string, headers: Record<string, string>): string {
  const lines = [`wrk.method = ${luaString(method)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  lines.push(`
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${MARK}{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.3f,"stdev":%.3f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
`);
  return lines.join('\n');
}

interface WrkJson {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { mean: number; stdev: number; max: number; p50: number; p90: number; p99: number };
}

/** Parse wrk's stdout (JSON line from our done() hook + the standard text). */
export function parseWrkOutput(text: string): Omit<WrkResult, 'invalid' | 'text' | 'tool'> {
  const line = text.split('\n').find((l) => l.startsWith(MARK));
  if (line === undefined) throw new BrokenRunError(`wrk output has no summary line:\n${text}`);
  const j = JSON.parse(line.slice(MARK.length)) as WrkJson;
  const non2xxText = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const durationSec = j.duration_us / 1e6;
  return {
    requests: j.requests,
    durationSec,
    rps: durationSec > 0 ? j.requests / durationSec : 0,
    bytes: j.bytes,
    latency: {
      mean: j.latency_us.mean / 1000,
      stdev: j.latency_us.stdev / 1000,
      p50: j.latency_us.p50 / 1000,
      p90: j.latency_us.p90 / 1000,
      p99: j.latency_us.p99 / 1000,
      max: j.latency_us.max / 1000,
    },
    errors: j.errors,
    non2xx: Math.max(j.errors.status, non2xxText?.[1] !== undefined ? Number(non2xxText[1]) : 0),
  };
}

let scriptSeq = 0;

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const method = opts.method ?? 'GET';
  if (method === 'HEAD') {
    // wrk's response parser never learns that a HEAD response has no body, so
    // with a Content-Length header (which registries must send) every
    // connection stalls after its first response. Use runAb() for HEAD.
    throw new Error('wrk cannot load-test HEAD requests; use runAb (bench/lib/ab.ts)');
  }
  const script = join(opts.scriptDir, `wrk-${process.pid}-${++scriptSeq}.lua`);
  await writeFile(script, wrkScript(method, opts.headers ?? {}));
  const duration = Math.max(1, Math.round(opts.durationSec));
  const timeout = opts.timeoutSec ?? 5;
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${duration}s`,
    `--timeout`,
    `${timeout}s`,
    '--latency',
    '-s',
    script,
    opts.url,
  ];
  const res = await runCommand('wrk', args, { timeoutMs: (duration + timeout + 30) * 1000 });
  if (res.code !== 0) {
    throw new BrokenRunError(`wrk ${args.join(' ')} exited ${res.code ?? res.signal}: ${res.stderr}${res.stdout}`);
  }
  const parsed = parseWrkOutput(res.stdout);
  const invalid: string[] = [];
  if (parsed.requests === 0) invalid.push('no requests completed');
  if (parsed.non2xx > 0) invalid.push(`${parsed.non2xx} non-2xx responses`);
  const e = parsed.errors;
  if (e.connect + e.read + e.write + e.timeout > 0) {
    invalid.push(`socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`);
  }
  return { tool: 'wrk', ...parsed, invalid, text: res.stdout };
}

export async function wrkVersion(): Promise<string> {
  try {
    const r = await runCommand('wrk', ['-v'], { timeoutMs: 5000 });
    return (r.stdout + r.stderr).split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'not installed';
  }
}
