// registry-core: the plain registry data path, Cistern vs CNCF Distribution.
//   1. large-blob GET throughput (1 client, 8 concurrent clients)
//   2. manifest GET / HEAD requests per second (wrk for GET, ab for HEAD)
//   3. server memory: VmRSS max during the 8-client downloads, VmHWM at the end
import { join } from 'node:path';
import { defineScenario, ratioAtLeast, candidateBelow, type ScenarioContext } from '../lib/framework.ts';
import { generateBlobFile, MiB, type BlobFile } from '../lib/blob.ts';
import { seedImage, verifyManifest, OCI_MANIFEST, type SeededImage } from '../lib/oci.ts';
import { measureDownload, type DownloadResult } from '../lib/throughput.ts';
import { RssSampler, type RssSamples } from '../lib/rss.ts';
import { runWrk, type LoadResult } from '../lib/wrk.ts';
import { runAb } from '../lib/ab.ts';
import { envNumber, median } from '../lib/util.ts';
import type { RegistryServer } from '../lib/servers.ts';

const REPO = 'bench/core';
const TAG = 'v1';
const BLOB_SEED = 'cistern-bench/registry-core/large-blob';
const CONCURRENT_CLIENTS = 8;
const WRK_THREADS = 2;
const CONNECTIONS = 64;
const RSS_TARGET_BYTES = 150e6; // "150 MB"

interface Seeded {
  server: RegistryServer;
  image: SeededImage;
}

async function seed(ctx: ScenarioContext, server: RegistryServer, blob: BlobFile): Promise<Seeded> {
  const t0 = performance.now();
  const image = await seedImage(server.baseUrl, REPO, TAG, [{ file: blob }]);
  await verifyManifest(server.baseUrl, image);
  ctx.log(`${server.label}: pushed ${REPO}:${TAG} (${image.manifest.digest}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // Untimed full download with sha256 check; also warms the page cache.
  await verifyBlob(server, blob);
  ctx.log(`${server.label}: blob download verified (sha256 + size)`);
  return { server, image };
}

async function verifyBlob(server: RegistryServer, blob: BlobFile): Promise<void> {
  await measureDownload({
    url: blobUrl(server, blob),
    clients: 1,
    expectedBytes: blob.size,
    expectedSha256: blob.digest.slice('sha256:'.length),
  });
}

function blobUrl(server: RegistryServer, blob: BlobFile): string {
  return `${server.baseUrl}/v2/${REPO}/blobs/${blob.digest}`;
}

async function blobThroughput(
  ctx: ScenarioContext,
  servers: RegistryServer[],
  blob: BlobFile,
  clients: number,
  repeats: number,
  rss: Map<RegistryServer, RssSamples>,
): Promise<Map<RegistryServer, DownloadResult[]>> {
  const runs = new Map<RegistryServer, DownloadResult[]>(servers.map((s) => [s, []]));
  for (let rep = 0; rep < repeats; rep++) {
    // Alternate the order so neither server always goes first.
    const order = rep % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const sampler = clients === CONCURRENT_CLIENTS ? new RssSampler(server.pid).start() : undefined;
      const r = await measureDownload({ url: blobUrl(server, blob), clients, expectedBytes: blob.size });
      if (sampler !== undefined) {
        const s = sampler.stop();
        const prev = rss.get(server);
        rss.set(server, {
          samples: (prev?.samples ?? 0) + s.samples,
          maxRss: Math.max(prev?.maxRss ?? 0, s.maxRss),
          maxTreeRss: Math.max(prev?.maxTreeRss ?? 0, s.maxTreeRss),
          hwmAtEnd: s.hwmAtEnd,
        });
      }
      runs.get(server)!.push(r);
      ctx.log(
        `blob GET x${clients} ${server.label} run ${rep + 1}/${repeats}: ${r.mibPerSec.toFixed(1)} MiB/s ` +
          `(${(r.wallMs / 1000).toFixed(2)} s, per-stream ${r.perStreamMibPerSec.min.toFixed(0)}–${r.perStreamMibPerSec.max.toFixed(0)} MiB/s)`,
      );
    }
  }
  return runs;
}

async function manifestLoad(
  ctx: ScenarioContext,
  server: RegistryServer,
  image: SeededImage,
  method: 'GET' | 'HEAD',
  scratchDir: string,
): Promise<LoadResult> {
  const url = `${server.baseUrl}/v2/${image.repo}/manifests/${image.tag}`;
  const headers = { Accept: OCI_MANIFEST };
  // wrk can't do HEAD (it waits for a body matching Content-Length): ab does HEAD.
  const run = (durationSec: number): Promise<LoadResult> =>
    method === 'GET'
      ? runWrk({ url, method, headers, threads: WRK_THREADS, connections: CONNECTIONS, durationSec, scriptDir: scratchDir })
      : runAb({ url, method, headers, concurrency: CONNECTIONS, durationSec, scratchDir });
  if (ctx.options.warmupSec > 0) await run(ctx.options.warmupSec);
  const r = await run(ctx.options.durationSec);
  if (method === 'GET' && r.requests > 0 && r.bytes / r.requests < image.manifest.bytes.length) {
    r.invalid.push(
      `average response ${Math.round(r.bytes / r.requests)} B is smaller than the ${image.manifest.bytes.length} B manifest`,
    );
  }
  ctx.log(
    `manifest ${method} ${server.label} (${r.tool}): ${r.rps.toFixed(0)} req/s, p99 ${r.latency.p99.toFixed(2)} ms` +
      (r.invalid.length > 0 ? ` [INVALID: ${r.invalid.join('; ')}]` : ''),
  );
  return r;
}

const mib = (bytes: number): number => bytes / MiB;

export default defineScenario({
  name: 'registry-core',
  description: 'blob GET throughput, manifest GET/HEAD rps, server RSS',
  requires: ['wrk', 'ab'],
  async run(ctx) {
    const blobMiB = envNumber('BENCH_BLOB_MIB', 256);
    const repeats = Math.max(1, Math.round(envNumber('BENCH_BLOB_REPEATS', 5)));
    const work = await ctx.tmpdir('work');

    const t0 = performance.now();
    const blob = await generateBlobFile(join(work, 'large.bin'), Math.round(blobMiB * MiB), BLOB_SEED);
    ctx.log(`generated ${blobMiB} MiB blob ${blob.digest} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const base = await ctx.launchBaseline();
    const cand = await ctx.launchCandidate();
    const idleMem = [base.memory(), cand.memory()];
    const seeded = [await seed(ctx, base, blob), await seed(ctx, cand, blob)];
    const servers = [base, cand];
    const sizeLabel = `${blobMiB} MiB`;

    // 1 + 3a. Blob throughput, RSS sampled during the concurrent phase.
    const rss = new Map<RegistryServer, RssSamples>();
    for (const clients of [1, CONCURRENT_CLIENTS]) {
      const runs = await blobThroughput(ctx, servers, blob, clients, repeats, rss);
      const value = (s: RegistryServer): number => median(runs.get(s)!.map((r) => r.mibPerSec));
      ctx.record({
        case: `blob GET ${sizeLabel}, ${clients} client${clients > 1 ? 's' : ''}`,
        metric: `aggregate (median of ${repeats})`,
        unit: 'MiB/s',
        better: 'higher',
        baseline: value(base),
        candidate: value(cand),
        target: ratioAtLeast(1),
        detail: Object.fromEntries(
          servers.map((s) => [
            s.label,
            runs.get(s)!.map((r) => ({ mibPerSec: r.mibPerSec, wallMs: r.wallMs, perStream: r.perStreamMibPerSec })),
          ]),
        ),
      });
    }

    // 2. Manifest GET / HEAD rps.
    const scratchDir = await ctx.tmpdir('load');
    for (const method of ['GET', 'HEAD'] as const) {
      const res = new Map<RegistryServer, LoadResult>();
      for (const { server, image } of seeded) res.set(server, await manifestLoad(ctx, server, image, method, scratchDir));
      const b = res.get(base)!;
      const c = res.get(cand)!;
      const invalid = [
        ...b.invalid.map((m) => `${base.label}: ${m}`),
        ...c.invalid.map((m) => `${cand.label}: ${m}`),
      ];
      const caseName = `manifest ${method}, ${CONNECTIONS} conns (${b.tool})`;
      const detail = Object.fromEntries(
        [b, c].map((r, i) => [
          servers[i]!.label,
          { tool: r.tool, requests: r.requests, durationSec: r.durationSec, bytes: r.bytes, latencyMs: r.latency, errors: r.errors },
        ]),
      );
      ctx.record({
        case: caseName,
        metric: 'throughput',
        unit: 'req/s',
        better: 'higher',
        baseline: b.rps,
        candidate: c.rps,
        invalid,
        detail,
        ...(method === 'GET' ? { target: ratioAtLeast(10) } : {}),
      });
      ctx.record({ case: caseName, metric: 'p99 latency', unit: 'ms', better: 'lower', baseline: b.latency.p99, candidate: c.latency.p99 });
      ctx.record({
        case: caseName,
        metric: 'non-2xx responses',
        unit: 'count',
        better: 'lower',
        baseline: b.non2xx,
        candidate: c.non2xx,
        invalid,
      });
    }

    // 3. Memory.
    ctx.record({
      case: 'idle, right after startup',
      metric: 'VmRSS',
      unit: 'MiB',
      better: 'lower',
      baseline: idleMem[0] ? mib(idleMem[0].main.rss) : null,
      candidate: idleMem[1] ? mib(idleMem[1].main.rss) : null,
    });
    const rb = rss.get(base);
    const rc = rss.get(cand);
    ctx.record({
      case: `${CONCURRENT_CLIENTS} concurrent ${sizeLabel} downloads`,
      metric: 'VmRSS max (sampled)',
      unit: 'MiB',
      better: 'lower',
      baseline: rb ? mib(rb.maxRss) : null,
      candidate: rc ? mib(rc.maxRss) : null,
      target: candidateBelow(mib(RSS_TARGET_BYTES), `< 150 MB (${mib(RSS_TARGET_BYTES).toFixed(0)} MiB)`),
      detail: {
        [base.label]: rb ? { ...rb, maxTreeRssMiB: mib(rb.maxTreeRss) } : null,
        [cand.label]: rc ? { ...rc, maxTreeRssMiB: mib(rc.maxTreeRss) } : null,
      },
    });
    const endMem = servers.map((s) => s.memory());
    ctx.record({
      case: 'after all runs',
      metric: 'VmHWM (peak RSS)',
      unit: 'MiB',
      better: 'lower',
      baseline: endMem[0] ? mib(endMem[0].main.hwm) : null,
      candidate: endMem[1] ? mib(endMem[1].main.hwm) : null,
      detail: Object.fromEntries(servers.map((s, i) => [s.label, endMem[i] ?? null])),
    });
    for (const [i, s] of servers.entries()) {
      const m = endMem[i];
      if (m === undefined) throw new Error(`${s.label} (pid ${s.pid}) is gone after the runs`);
      if (m.pids.length > 1) {
        ctx.note(
          `${s.label} runs ${m.pids.length - 1} child process(es); process-tree VmRSS now ${mib(m.tree.rss).toFixed(1)} MiB ` +
            `(main ${mib(m.main.rss).toFixed(1)} MiB), tree max during downloads ${mib(rss.get(s)?.maxTreeRss ?? 0).toFixed(1)} MiB`,
        );
      }
    }
    const dead = servers.filter((s) => !s.proc.running());
    if (dead.length > 0) throw new Error(`server(s) died during the runs: ${dead.map((s) => s.label).join(', ')}`);
    // Still serving the right bytes after all that load?
    for (const { server, image } of seeded) {
      await verifyBlob(server, blob);
      await verifyManifest(server.baseUrl, image);
    }
    ctx.log('post-run check: blob sha256 and manifest bytes still correct on both servers');
  },
});
