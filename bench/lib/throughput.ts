// Blob download throughput, measured by separate Node child processes that
// stream and discard the bytes (see download-client.ts). All clients are
// started, wait at a barrier, and are released together; aggregate throughput
// = total bytes / (last stream end - first stream start).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { trackChild, stopChild } from './cleanup.ts';
import { BrokenRunError } from './proc.ts';
import { REPO_ROOT } from './paths.ts';
import { MiB } from './blob.ts';
import type { DownloadClientArgs, DownloadClientReport, StreamReport } from './download-client.ts';

const CLIENT = join(REPO_ROOT, 'bench', 'lib', 'download-client.ts');

export interface DownloadOptions {
  url: string;
  /** Total concurrent downloads. */
  clients: number;
  /** Spread the downloads over this many child processes (default: min(clients, CPU count)). */
  processes?: number;
  expectedBytes: number;
  /** Hex sha256 to check on one stream (hashing costs client CPU; prefer untimed runs). */
  expectedSha256?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface DownloadResult {
  clients: number;
  processes: number;
  totalBytes: number;
  wallMs: number;
  mibPerSec: number;
  /** Per-stream MiB/s (min/max) — a large spread suggests unfair scheduling. */
  perStreamMibPerSec: { min: number; max: number };
  streams: StreamReport[];
}

interface ClientProc {
  child: ChildProcess;
  ready: Promise<void>;
  report: Promise<DownloadClientReport>;
}

function startClient(args: DownloadClientArgs): ClientProc {
  const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(args)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  trackChild(child);
  child.stdin!.on('error', () => undefined); // EPIPE if the client died; surfaced via 'close'
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const lines = createInterface({ input: child.stdout! });
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  const report = new Promise<DownloadClientReport>((resolve, reject) => {
    let got: DownloadClientReport | undefined;
    lines.on('line', (line) => {
      if (line === 'READY') resolveReady();
      else if (line.startsWith('{')) got = JSON.parse(line) as DownloadClientReport;
    });
    child.once('close', (code) => {
      const err = new BrokenRunError(`download client exited ${code} without a report: ${stderr.trim()}`);
      rejectReady(err);
      if (got !== undefined) resolve(got);
      else reject(err);
    });
  });
  // Avoid unhandled rejections if we bail out before awaiting these.
  ready.catch(() => undefined);
  report.catch(() => undefined);
  return { child, ready, report };
}

export async function measureDownload(opts: DownloadOptions): Promise<DownloadResult> {
  const processes = Math.max(1, Math.min(opts.clients, opts.processes ?? availableParallelism()));
  const perProc = Array.from({ length: processes }, (_, i) =>
    Math.floor(opts.clients / processes) + (i < opts.clients % processes ? 1 : 0),
  );
  const procs = perProc.map((streams, i) =>
    startClient({
      url: opts.url,
      streams,
      hash: i === 0 && opts.expectedSha256 !== undefined,
      ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
    }),
  );
  const timeoutMs = opts.timeoutMs ?? 180_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokenRunError(`download of ${opts.url} timed out`)), timeoutMs);
  });
  timeout.catch(() => undefined);
  try {
    await Promise.race([Promise.all(procs.map((p) => p.ready)), timeout]);
    for (const p of procs) p.child.stdin!.end('GO\n');
    const reports = await Promise.race([Promise.all(procs.map((p) => p.report)), timeout]);
    const streams = reports.flatMap((r) => r.streams);
    for (const s of streams) {
      if (s.error !== undefined) throw new BrokenRunError(`download ${opts.url}: ${s.error}`);
      if (s.status !== 200) throw new BrokenRunError(`download ${opts.url}: HTTP ${s.status}`);
      if (s.bytes !== opts.expectedBytes) {
        throw new BrokenRunError(`download ${opts.url}: got ${s.bytes} bytes, expected ${opts.expectedBytes}`);
      }
      if (s.sha256 !== undefined && opts.expectedSha256 !== undefined && s.sha256 !== opts.expectedSha256) {
        throw new BrokenRunError(`download ${opts.url}: sha256 ${s.sha256}, expected ${opts.expectedSha256}`);
      }
    }
    if (opts.expectedSha256 !== undefined && !streams.some((s) => s.sha256 !== undefined)) {
      throw new BrokenRunError('download client did not report a sha256');
    }
    const start = Math.min(...streams.map((s) => s.startMs));
    const end = Math.max(...streams.map((s) => s.endMs));
    const totalBytes = streams.reduce((a, s) => a + s.bytes, 0);
    const wallMs = end - start;
    const per = streams.map((s) => s.bytes / MiB / ((s.endMs - s.startMs) / 1000));
    return {
      clients: opts.clients,
      processes,
      totalBytes,
      wallMs,
      mibPerSec: totalBytes / MiB / (wallMs / 1000),
      perStreamMibPerSec: { min: Math.min(...per), max: Math.max(...per) },
      streams,
    };
  } finally {
    clearTimeout(timer);
    await Promise.all(procs.map((p) => stopChild(p.child, 1000)));
  }
}
