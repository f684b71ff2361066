// pull-through: Cistern as a pull-through cache vs CNCF Distribution in proxy mode, both in front
// of the same plain Distribution upstream.
//   1. cold pull of a ~290 MiB image: direct from the upstream, through a fresh Cistern, through a
//      fresh Distribution proxy (a fresh pair per repeat; median reported)
//      and through a minimal Node tee (bench/lib/node-tee.mjs: stream + sha256 + file + fsync, nothing
//      else), the floor for any pull-through cache written for Node on this machine
//   2. warm pull of the same image through the (now warm) Cistern and Distribution proxy
//   3. upstream requests caused by 20 concurrent cold pulls of a small image, counted by a tiny
//      HTTP proxy (node:http) between the cache and its upstream
// The pulling client lives in the harness process and pulls like a real client: manifest by tag,
// then config + layers with PULL_PARALLEL downloads at a time over keep-alive connections,
// streaming each blob (bytes counted, sha256 verified, nothing buffered).
import http from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineScenario, ratioAtMost, type ScenarioContext, type Target } from '../lib/framework.ts';
import { deterministicBytes, generateBlobFile, MiB, type BlobFile } from '../lib/blob.ts';
import { seedImage, verifyManifest, OCI_MANIFEST, type Descriptor, type SeededImage } from '../lib/oci.ts';
import { BrokenRunError, launchProcess, runCommand } from '../lib/proc.ts';
import { waitForHttp200 } from '../lib/http.ts';
import { freePort } from '../lib/port.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { descendants } from '../lib/rss.ts';
import { BENCH_HOST } from '../lib/port.ts';
import { envNumber, median } from '../lib/util.ts';
import type { RegistryServer, ServerOptions } from '../lib/servers.ts';

const REPO = 'bench/big';
const SMALL_REPO = 'bench/small';
const TAG = 'v1';
/** Cistern cache-rule prefix: clients pull <cistern>/up/<repo>. */
const PREFIX = 'up';
const SEED = 'cistern-bench/pull-through/layer';
/** Concurrent blob downloads per pull (containerd's default is 3). */
const PULL_PARALLEL = 3;
const CONCURRENT_PULLS = 20;
const COLD_TARGET = 1.1;
const DIST_PROXY_REFERENCE = 1.26;
/** Small image for the request-count case: 4 layers, a few MiB. */
const SMALL_LAYERS = [3 * MiB, 2 * MiB, 1 * MiB, 512 * 1024];

const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

// ---------------------------------------------------------------- pull client

class PullFailed extends Error {}

interface BlobTiming {
  digest: string;
  bytes: number;
  ms: number;
}

interface PullResult {
  wallMs: number;
  manifestMs: number;
  bytes: number;
  blobs: BlobTiming[];
}

function get(url: string, agent: http.Agent | false, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, resolve);
    req.setTimeout(120_000, () => req.destroy(new PullFailed(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

async function readAll(res: http.IncomingMessage, max = 4 * MiB): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > max) {
      res.destroy();
      throw new PullFailed(`response larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** GET, following registry-style redirects (to another origin without the keep-alive agent). */
async function getFollowing(url: string, agent: http.Agent, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await get(current, new URL(current).origin === origin ? agent : false, headers);
    const loc = res.headers.location;
    if (res.statusCode === undefined || res.statusCode < 300 || res.statusCode >= 400 || loc === undefined) return res;
    res.resume();
    current = new URL(loc, current).href;
  }
  throw new PullFailed(`too many redirects from ${url}`);
}

async function fetchBlob(baseUrl: string, repo: string, d: Descriptor, agent: http.Agent): Promise<BlobTiming> {
  const t0 = performance.now();
  const url = `${baseUrl}/v2/${repo}/blobs/${d.digest}`;
  const res = await getFollowing(url, agent);
  if (res.statusCode !== 200) {
    const body = await readAll(res).catch(() => Buffer.alloc(0));
    throw new PullFailed(`GET ${url}: HTTP ${res.statusCode} ${body.toString('utf8').slice(0, 200)}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const c of res) {
      bytes += (c as Buffer).length;
      hash.update(c as Buffer);
    }
  } catch (err) {
    throw new PullFailed(`GET ${url}: body broke off after ${bytes} bytes: ${(err as Error).message}`);
  }
  if (!res.complete) throw new PullFailed(`GET ${url}: response aborted after ${bytes} bytes`);
  const digest = `sha256:${hash.digest('hex')}`;
  if (bytes !== d.size || digest !== d.digest) {
    throw new BrokenRunError(`GET ${url}: got ${bytes} bytes with ${digest}, expected ${d.size} bytes with ${d.digest}`);
  }
  return { digest: d.digest, bytes, ms: performance.now() - t0 };
}

/** Pull `repo:tag` from `baseUrl` like a client: manifest, then config + layers, PULL_PARALLEL at a time. */
async function pullImage(baseUrl: string, repo: string, expect: SeededImage): Promise<PullResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: PULL_PARALLEL });
  try {
    const t0 = performance.now();
    const url = `${baseUrl}/v2/${repo}/manifests/${expect.tag}`;
    const res = await getFollowing(url, agent, { Accept: MANIFEST_ACCEPT });
    const body = await readAll(res);
    if (res.statusCode !== 200) throw new PullFailed(`GET ${url}: HTTP ${res.statusCode} ${body.toString('utf8').slice(0, 200)}`);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (digest !== expect.manifest.digest) {
      throw new BrokenRunError(`GET ${url}: manifest ${digest}, expected ${expect.manifest.digest}`);
    }
    const manifestMs = performance.now() - t0;
    const doc = JSON.parse(body.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
    const queue = [doc.config, ...doc.layers];
    const blobs: BlobTiming[] = [];
    const worker = async (): Promise<void> => {
      for (let d = queue.shift(); d !== undefined; d = queue.shift()) blobs.push(await fetchBlob(baseUrl, repo, d, agent));
    };
    await Promise.all(Array.from({ length: PULL_PARALLEL }, worker));
    const wallMs = performance.now() - t0;
    return { wallMs, manifestMs, bytes: blobs.reduce((a, b) => a + b.bytes, 0) + body.length, blobs };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------- CPU accounting

/** utime+stime of one process in clock ticks (USER_HZ, 100 on Linux). */
function ticks(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11] ?? 0) + Number(rest[12] ?? 0);
  } catch {
    return 0;
  }
}

const treeTicks = (pid: number): number => [pid, ...descendants(pid)].reduce((a, p) => a + ticks(p), 0);

interface CpuWatch {
  /** CPU seconds used since start, per label. */
  stop(): Record<string, number>;
}

type Watched = Pick<RegistryServer, 'label' | 'pid'>;

/** CPU seconds used by each server (process tree) and by the harness process (the pulling client). */
function watchCpu(servers: Watched[]): CpuWatch {
  const hz = 100;
  const before = servers.map((s) => treeTicks(s.pid));
  const self = process.cpuUsage();
  return {
    stop() {
      const out: Record<string, number> = {};
      servers.forEach((s, i) => (out[s.label] = (treeTicks(s.pid) - before[i]!) / hz));
      const d = process.cpuUsage(self);
      out['client (harness)'] = (d.user + d.system) / 1e6;
      return out;
    },
  };
}

// ---------------------------------------------------------------- cache storage checks

function storedPath(server: RegistryServer, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return server.kind === 'cistern'
    ? join(server.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex)
    : join(server.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** Waits until every blob is committed in the cache's store; returns when that was first seen (performance.now ms). */
async function waitStored(server: RegistryServer, blobs: Descriptor[], timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const sizes = await Promise.all(blobs.map((b) => stat(storedPath(server, b.digest)).then((s) => s.size, () => -1)));
    if (sizes.every((s, i) => s === blobs[i]!.size)) return performance.now();
    if (performance.now() > deadline) {
      throw new BrokenRunError(`${server.label}: blobs not all in its store ${timeoutMs / 1000} s after the pull`);
    }
    await sleep(25);
  }
}

async function flushDisk(): Promise<void> {
  await runCommand('sync', [], { timeoutMs: 120_000 });
}

// ---------------------------------------------------------------- counting proxy

interface Counts {
  ping: number;
  getManifest: number;
  headManifest: number;
  getBlob: number;
  headBlob: number;
  other: number;
  /** GETs per blob digest. */
  blobGets: Record<string, number>;
  /** GETs carrying a Range header (resumed fills). */
  ranged: number;
  otherRequests: string[];
}

const emptyCounts = (): Counts => ({
  ping: 0,
  getManifest: 0,
  headManifest: 0,
  getBlob: 0,
  headBlob: 0,
  other: 0,
  blobGets: {},
  ranged: 0,
  otherRequests: [],
});

/** A transparent HTTP proxy in front of one upstream that counts what passes through. */
class CountingProxy {
  readonly counts = emptyCounts();
  private inflight = 0;
  private lastActivity = performance.now();
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly server: http.Server;
  url = '';

  constructor(private readonly upstream: URL) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, BENCH_HOST, resolve);
    });
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('counting proxy has no port');
    this.url = `http://${BENCH_HOST}:${addr.port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private count(method: string, path: string, range: boolean): void {
    const c = this.counts;
    const p = path.split('?')[0]!;
    if (p === '/v2/' || p === '/v2') c.ping++;
    else if (/^\/v2\/.+\/manifests\/[^/]+$/.test(p)) {
      if (method === 'GET') c.getManifest++;
      else if (method === 'HEAD') c.headManifest++;
      else this.other(method, p);
    } else if (/^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/.test(p)) {
      const digest = p.slice(p.lastIndexOf('/') + 1);
      if (method === 'GET') {
        c.getBlob++;
        c.blobGets[digest] = (c.blobGets[digest] ?? 0) + 1;
        if (range) c.ranged++;
      } else if (method === 'HEAD') c.headBlob++;
      else this.other(method, p);
    } else this.other(method, p);
  }

  private other(method: string, path: string): void {
    this.counts.other++;
    if (this.counts.otherRequests.length < 20) this.counts.otherRequests.push(`${method} ${path}`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    this.count(method, path, req.headers.range !== undefined);
    this.inflight++;
    this.lastActivity = performance.now();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.inflight--;
      this.lastActivity = performance.now();
    };
    res.once('close', finish);
    const headers = { ...req.headers, host: this.upstream.host };
    const up = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method, path, headers, agent: this.agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`counting proxy: ${err.message}`);
    });
    req.pipe(up);
  }

  /** Resolves once nothing has been in flight for `quietMs` (a cache may keep fetching after its clients are done). */
  async quiesce(quietMs = 1500, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.inflight === 0 && performance.now() - this.lastActivity >= quietMs) return;
      await sleep(100);
    }
    throw new BrokenRunError(`upstream still busy ${timeoutMs / 1000} s after the pulls`);
  }
}

// ---------------------------------------------------------------- scenario pieces

/** The repository path a cache serves the upstream's `repo` under. */
const cachedRepo = (server: RegistryServer, repo: string): string => (server.kind === 'cistern' ? `${PREFIX}/${repo}` : repo);

/** Pull-through settings for whatever plays the cache (Cistern, or Distribution as a stand-in/baseline). */
function cacheOptions(upstreamUrl: string, label?: string): ServerOptions {
  return {
    ...(label !== undefined && { label }),
    cisternConfig: { registries: { [PREFIX]: { registry: upstreamUrl } } },
    distributionConfig: { proxy: { remoteurl: upstreamUrl } },
  };
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const blobList = (img: SeededImage): Descriptor[] => [img.config, ...img.layers];

async function stopAndWipe(server: RegistryServer): Promise<void> {
  await server.stop();
  await rm(server.dataDir, { recursive: true, force: true });
}

interface Tee extends Watched {
  baseUrl: string;
  stop(): Promise<void>;
}

/** Starts bench/lib/node-tee.mjs in front of `upstreamUrl`, writing under `dir`. */
async function launchTee(upstreamUrl: string, dir: string): Promise<Tee> {
  const port = await freePort();
  const proc = launchProcess({
    name: 'node-tee',
    command: process.execPath,
    args: [join(REPO_ROOT, 'bench', 'lib', 'node-tee.mjs'), upstreamUrl, String(port), join(dir, 'data')],
    cwd: REPO_ROOT,
    logPath: join(dir, 'node-tee.log'),
  });
  const baseUrl = `http://${BENCH_HOST}:${port}`;
  const err = await waitForHttp200(`${baseUrl}/v2/`, 10_000, () => proc.running());
  if (err !== undefined) {
    await proc.stop();
    throw new BrokenRunError(`node-tee failed to start: ${err}\n${proc.tail(10)}`);
  }
  return {
    label: 'node-tee',
    pid: proc.pid,
    baseUrl,
    stop: async () => {
      await proc.stop();
      await rm(join(dir, 'data'), { recursive: true, force: true });
    },
  };
}

interface ColdRun {
  wallMs: number;
  manifestMs: number;
  /** Pull start until every blob was seen committed in the cache's store. */
  storedMs?: number;
  cpuSec: Record<string, number>;
  blobMs: number[];
}

async function timedPull(
  ctx: ScenarioContext,
  label: string,
  baseUrl: string,
  repo: string,
  img: SeededImage,
  watch: Watched[],
  cache?: RegistryServer,
): Promise<ColdRun> {
  const cpu = watchCpu(watch);
  const t0 = performance.now();
  const r = await pullImage(baseUrl, repo, img);
  const expected = blobList(img).reduce((a, b) => a + b.size, 0) + img.manifest.bytes.length;
  if (r.bytes !== expected) throw new BrokenRunError(`${label}: pulled ${r.bytes} bytes, expected ${expected}`);
  const run: ColdRun = { wallMs: r.wallMs, manifestMs: r.manifestMs, cpuSec: {}, blobMs: r.blobs.map((b) => b.ms) };
  if (cache !== undefined) run.storedMs = (await waitStored(cache, blobList(img))) - t0;
  run.cpuSec = cpu.stop();
  const cpuText = Object.entries(run.cpuSec)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
  ctx.log(
    `${label}: ${secs(r.wallMs)} (${((r.bytes / MiB) / (r.wallMs / 1000)).toFixed(0)} MiB/s` +
      (run.storedMs !== undefined ? `, all blobs in store at ${secs(run.storedMs)}` : '') +
      `; CPU s: ${cpuText})`,
  );
  return run;
}

function medianCpu(runs: ColdRun[]): Record<string, number> {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.cpuSec)))];
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r.cpuSec[k] ?? 0))]));
}

const cpuSummary = (c: Record<string, number>): string =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');

// ---------------------------------------------------------------- the scenario

export default defineScenario({
  name: 'pull-through',
  description: 'cold/warm pulls through a pull-through cache, upstream requests under 20 concurrent pulls',
  async run(ctx) {
    const layerCount = Math.max(1, Math.round(envNumber('BENCH_PULL_LAYERS', 5)));
    const layerMiB = envNumber('BENCH_PULL_LAYER_MIB', 58);
    const repeats = Math.max(1, Math.round(envNumber('BENCH_PULL_REPEATS', 5)));
    const warmRepeats = Math.max(1, Math.round(envNumber('BENCH_PULL_WARM_REPEATS', 2 * repeats)));
    const work = await ctx.tmpdir('work');

    // ---- upstream with the big image
    const t0 = performance.now();
    const files: BlobFile[] = [];
    for (let i = 0; i < layerCount; i++) {
      files.push(await generateBlobFile(join(work, `layer${i}.bin`), Math.round(layerMiB * MiB), `${SEED}/${i}`));
    }
    const totalMiB = files.reduce((a, f) => a + f.size, 0) / MiB;
    ctx.log(`generated ${layerCount} x ${layerMiB} MiB layers in ${secs(performance.now() - t0)}`);
    const upstream = await ctx.launch('distribution', { label: 'upstream' });
    const img = await seedImage(upstream.baseUrl, REPO, TAG, files.map((file) => ({ file })));
    await verifyManifest(upstream.baseUrl, img);
    for (const f of files) await rm(f.path, { force: true });
    ctx.log(`upstream: pushed ${REPO}:${TAG} (${totalMiB.toFixed(0)} MiB in ${layerCount} layers) ${img.manifest.digest}`);
    // Untimed pull: verifies the upstream and warms its page cache, so every path starts alike.
    await pullImage(upstream.baseUrl, REPO, img);
    await flushDisk();

    // ---- 1. cold pulls: direct, fresh Cistern, fresh Distribution proxy; order rotated per repeat
    const direct: ColdRun[] = [];
    const coldCand: ColdRun[] = [];
    const coldBase: ColdRun[] = [];
    const coldTee: ColdRun[] = [];
    let cand: RegistryServer | undefined;
    let base: RegistryServer | undefined;
    type Path = 'direct' | 'cand' | 'base' | 'tee';
    const order: Path[] = ['direct', 'cand', 'base', 'tee'];
    const teeDir = await ctx.tmpdir('node-tee');
    for (let rep = 0; rep < repeats; rep++) {
      const seq = [...order.slice(rep % order.length), ...order.slice(0, rep % order.length)];
      for (const path of seq) {
        const tag = `cold ${rep + 1}/${repeats}`;
        if (path === 'direct') {
          direct.push(await timedPull(ctx, `${tag} direct`, upstream.baseUrl, REPO, img, [upstream]));
        } else if (path === 'tee') {
          await flushDisk();
          const tee = await launchTee(upstream.baseUrl, teeDir);
          try {
            coldTee.push(await timedPull(ctx, `${tag} node-tee`, tee.baseUrl, REPO, img, [upstream, tee]));
          } finally {
            await tee.stop();
          }
        } else if (path === 'cand') {
          if (cand !== undefined) await stopAndWipe(cand);
          await flushDisk();
          cand = await ctx.launchCandidate(cacheOptions(upstream.baseUrl));
          coldCand.push(await timedPull(ctx, `${tag} ${cand.label}`, cand.baseUrl, cachedRepo(cand, REPO), img, [upstream, cand], cand));
        } else {
          if (base !== undefined) await stopAndWipe(base);
          await flushDisk();
          base = await ctx.launchBaseline(cacheOptions(upstream.baseUrl, 'distribution-proxy'));
          coldBase.push(await timedPull(ctx, `${tag} ${base.label}`, base.baseUrl, cachedRepo(base, REPO), img, [upstream, base], base));
        }
        await flushDisk();
      }
    }
    if (cand === undefined || base === undefined) throw new Error('unreachable');

    const directMs = median(direct.map((r) => r.wallMs));
    const candMs = median(coldCand.map((r) => r.wallMs));
    const baseMs = median(coldBase.map((r) => r.wallMs));
    const sizeLabel = `${totalMiB.toFixed(0)} MiB (${layerCount}x${layerMiB} MiB)`;
    const runDetail = (runs: ColdRun[]) => runs.map((r) => ({ ...r, blobMs: r.blobMs.map((m) => Math.round(m)) }));
    ctx.record({
      case: `cold pull ${sizeLabel}, ${PULL_PARALLEL} blobs at a time`,
      metric: `wall time (median of ${repeats})`,
      unit: 's',
      better: 'lower',
      baseline: baseMs / 1000,
      candidate: candMs / 1000,
      detail: { direct: runDetail(direct), [base.label]: runDetail(coldBase), [cand.label]: runDetail(coldCand) },
    });
    const coldTarget: Target = { kind: 'candidate', op: '<=', value: COLD_TARGET, label: `cand ≤ ${COLD_TARGET.toFixed(2)}x direct` };
    ctx.record({
      case: `cold pull ÷ direct pull (direct ${secs(directMs)})`,
      metric: 'time ratio to direct',
      unit: 'x',
      better: 'lower',
      baseline: baseMs / directMs,
      candidate: candMs / directMs,
      target: coldTarget,
      detail: { directMs, candMs, baseMs, distributionProxyReference: DIST_PROXY_REFERENCE },
    });
    const teeMs = median(coldTee.map((r) => r.wallMs));
    ctx.record({
      case: `cold pull ÷ minimal Node tee (tee ${secs(teeMs)}, ${(teeMs / directMs).toFixed(2)}x direct)`,
      metric: 'time ratio to node-tee',
      unit: 'x',
      better: 'lower',
      baseline: baseMs / teeMs,
      candidate: candMs / teeMs,
      detail: { teeMs, tee: runDetail(coldTee) },
    });
    ctx.record({
      case: 'cold pull: all blobs committed in the cache',
      metric: 'time from pull start (median)',
      unit: 's',
      better: 'lower',
      baseline: median(coldBase.map((r) => r.storedMs ?? Number.NaN)) / 1000,
      candidate: median(coldCand.map((r) => r.storedMs ?? Number.NaN)) / 1000,
    });
    ctx.note(
      `cold pull, direct from upstream: median ${secs(directMs)} (runs ${direct.map((r) => secs(r.wallMs)).join(', ')}); ` +
        `${cand.label} ${coldCand.map((r) => secs(r.wallMs)).join(', ')}; ${base.label} ${coldBase.map((r) => secs(r.wallMs)).join(', ')}; ` +
        `node-tee ${coldTee.map((r) => secs(r.wallMs)).join(', ')}. ` +
        `Reference for Distribution proxy ÷ direct: about ${DIST_PROXY_REFERENCE}x.`,
    );
    ctx.note(
      `cold pull CPU seconds (median per run): direct [${cpuSummary(medianCpu(direct))}]; ` +
        `${cand.label} [${cpuSummary(medianCpu(coldCand))}]; ${base.label} [${cpuSummary(medianCpu(coldBase))}]; ` +
        `node-tee [${cpuSummary(medianCpu(coldTee))}]`,
    );

    // ---- 2. warm pulls through the caches filled by the last cold repeat
    const warmCand: ColdRun[] = [];
    const warmBase: ColdRun[] = [];
    const warmDirect: ColdRun[] = [];
    for (let rep = 0; rep < warmRepeats; rep++) {
      const seq: Path[] = rep % 2 === 0 ? ['cand', 'base', 'direct'] : ['base', 'cand', 'direct'];
      for (const path of seq) {
        const tag = `warm ${rep + 1}/${warmRepeats}`;
        if (path === 'cand') warmCand.push(await timedPull(ctx, `${tag} ${cand.label}`, cand.baseUrl, cachedRepo(cand, REPO), img, [upstream, cand]));
        else if (path === 'base') warmBase.push(await timedPull(ctx, `${tag} ${base.label}`, base.baseUrl, cachedRepo(base, REPO), img, [upstream, base]));
        else warmDirect.push(await timedPull(ctx, `${tag} direct`, upstream.baseUrl, REPO, img, [upstream]));
      }
    }
    const warmCandMs = median(warmCand.map((r) => r.wallMs));
    const warmBaseMs = median(warmBase.map((r) => r.wallMs));
    const warmDirectMs = median(warmDirect.map((r) => r.wallMs));
    ctx.record({
      case: `warm pull ${sizeLabel}, ${PULL_PARALLEL} blobs at a time`,
      metric: `wall time (median of ${warmRepeats})`,
      unit: 's',
      better: 'lower',
      baseline: warmBaseMs / 1000,
      candidate: warmCandMs / 1000,
      target: ratioAtMost(1),
      detail: { [base.label]: runDetail(warmBase), [cand.label]: runDetail(warmCand), direct: runDetail(warmDirect) },
    });
    ctx.record({
      case: `warm pull ÷ direct pull (direct ${secs(warmDirectMs)})`,
      metric: 'time ratio to direct',
      unit: 'x',
      better: 'lower',
      baseline: warmBaseMs / warmDirectMs,
      candidate: warmCandMs / warmDirectMs,
    });
    const upstreamCpuWarm = (runs: ColdRun[]): number => Math.max(...runs.map((r) => r.cpuSec[upstream.label] ?? 0));
    const range = (runs: ColdRun[]): string => {
      const v = runs.map((r) => r.wallMs);
      return `${secs(Math.min(...v))}–${secs(Math.max(...v))}`;
    };
    ctx.note(`warm pull ranges: ${cand.label} ${range(warmCand)}, ${base.label} ${range(warmBase)}, direct ${range(warmDirect)}`);
    ctx.note(
      `warm pull CPU seconds (median per run): ${cand.label} [${cpuSummary(medianCpu(warmCand))}]; ` +
        `${base.label} [${cpuSummary(medianCpu(warmBase))}]; direct [${cpuSummary(medianCpu(warmDirect))}]`,
    );
    for (const [label, runs] of [[cand.label, warmCand], [base.label, warmBase]] as const) {
      if (upstreamCpuWarm(runs) > 0.2) {
        ctx.note(`warm pulls through ${label} still cost the upstream up to ${upstreamCpuWarm(runs).toFixed(2)} CPU s: not fully served from cache?`);
      }
    }
    await stopAndWipe(cand);
    await stopAndWipe(base);
    await stopAndWipe(upstream);

    // ---- 3. upstream requests for 20 concurrent cold pulls of a small image
    const small = await ctx.launch('distribution', { label: 'upstream-small' });
    const smallImg = await seedImage(
      small.baseUrl,
      SMALL_REPO,
      TAG,
      SMALL_LAYERS.map((size, i) => ({ bytes: deterministicBytes(size, `${SEED}/small/${i}`) })),
    );
    await verifyManifest(small.baseUrl, smallImg);
    const smallBlobs = blobList(smallImg);
    const smallMiB = smallBlobs.reduce((a, b) => a + b.size, 0) / MiB;
    ctx.log(`upstream-small: pushed ${SMALL_REPO}:${TAG} (${smallMiB.toFixed(1)} MiB, ${smallBlobs.length} blobs incl. config)`);

    const herd = async (kind: 'cand' | 'base'): Promise<{ counts: Counts; failures: string[]; wallMs: number; server: RegistryServer }> => {
      const proxy = await new CountingProxy(new URL(small.baseUrl)).start();
      ctx.defer(() => proxy.stop());
      const opts = cacheOptions(proxy.url, kind === 'base' ? 'distribution-proxy' : undefined);
      const server = kind === 'cand' ? await ctx.launchCandidate(opts) : await ctx.launchBaseline(opts);
      const repo = cachedRepo(server, SMALL_REPO);
      // Startup may already talk to the upstream (it should not); count only what the pulls cause.
      const atStart = { ...proxy.counts, blobGets: { ...proxy.counts.blobGets } };
      const t = performance.now();
      const results = await Promise.allSettled(Array.from({ length: CONCURRENT_PULLS }, () => pullImage(server.baseUrl, repo, smallImg)));
      const wallMs = performance.now() - t;
      const broken = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof BrokenRunError);
      if (broken !== undefined) throw broken.reason;
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
      await proxy.quiesce();
      const c = proxy.counts;
      const counts: Counts = {
        ...c,
        ping: c.ping - atStart.ping,
        getManifest: c.getManifest - atStart.getManifest,
        headManifest: c.headManifest - atStart.headManifest,
        getBlob: c.getBlob - atStart.getBlob,
        headBlob: c.headBlob - atStart.headBlob,
        other: c.other - atStart.other,
        blobGets: Object.fromEntries(Object.entries(c.blobGets).map(([d, n]) => [d, n - (atStart.blobGets[d] ?? 0)])),
      };
      if (atStart.ping + atStart.getManifest + atStart.headManifest + atStart.getBlob + atStart.headBlob + atStart.other > 0) {
        ctx.note(`${server.label} sent upstream requests at startup, before any pull (not counted below): ${JSON.stringify(atStart)}`);
      }
      ctx.log(
        `${CONCURRENT_PULLS} concurrent pulls via ${server.label}: ${secs(wallMs)}, ${failures.length} failed; upstream saw ` +
          `GET manifest ${counts.getManifest}, HEAD manifest ${counts.headManifest}, GET blob ${counts.getBlob}, ` +
          `HEAD blob ${counts.headBlob}, GET /v2/ ${counts.ping}, other ${counts.other}`,
      );
      return { counts, failures, wallMs, server };
    };
    const hc = await herd('cand');
    const hb = await herd('base');
    const invalid = [
      ...(hc.failures.length > 0 ? [`${hc.server.label}: ${hc.failures.length}/${CONCURRENT_PULLS} pulls failed: ${hc.failures[0]}`] : []),
      ...(hb.failures.length > 0 ? [`${hb.server.label}: ${hb.failures.length}/${CONCURRENT_PULLS} pulls failed: ${hb.failures[0]}`] : []),
    ];
    const n = smallBlobs.length;
    const herdCase = `${CONCURRENT_PULLS} concurrent cold pulls, ${smallMiB.toFixed(1)} MiB, ${n} blobs`;
    const maxPerBlob = (c: Counts): number => Math.max(0, ...smallBlobs.map((b) => c.blobGets[b.digest] ?? 0));
    // A fresh cache cannot serve what it never fetched: if it seems to, the counting is broken.
    for (const h of [hc, hb]) {
      const unfetched = smallBlobs.filter((b) => (h.counts.blobGets[b.digest] ?? 0) === 0);
      if (unfetched.length > 0 || h.counts.getManifest === 0) {
        throw new BrokenRunError(
          `counting proxy saw no upstream GET for the manifest or blob(s) ${unfetched.map((b) => b.digest).join(', ')} via ${h.server.label}`,
        );
      }
    }
    const exactly = (v: number): Target => ({ kind: 'candidate', op: '<=', value: v, label: `= ${v}` });
    const detail = {
      [hb.server.label]: { ...hb.counts, wallMs: hb.wallMs, failures: hb.failures },
      [hc.server.label]: { ...hc.counts, wallMs: hc.wallMs, failures: hc.failures },
    };
    const countRow = (metric: string, pick: (c: Counts) => number, target?: Target): void => {
      ctx.record({
        case: herdCase,
        metric,
        unit: 'count',
        better: 'lower',
        baseline: pick(hb.counts),
        candidate: pick(hc.counts),
        invalid,
        ...(target !== undefined && { target }),
        ...(metric.startsWith('upstream GET manifest') && { detail }),
      });
    };
    countRow('upstream GET manifest', (c) => c.getManifest, exactly(1));
    countRow(`upstream GET blob (${n} blobs)`, (c) => c.getBlob, exactly(n));
    countRow('upstream GETs for the busiest blob', maxPerBlob, exactly(1));
    countRow('upstream HEAD manifest', (c) => c.headManifest);
    countRow('upstream HEAD blob', (c) => c.headBlob);
    countRow('upstream GET /v2/ (ping)', (c) => c.ping);
    countRow('upstream other requests', (c) => c.other);
    countRow('upstream blob GETs with Range', (c) => c.ranged);
    ctx.record({
      case: herdCase,
      metric: 'wall time, all pulls',
      unit: 's',
      better: 'lower',
      baseline: hb.wallMs / 1000,
      candidate: hc.wallMs / 1000,
      invalid,
    });
  },
});
