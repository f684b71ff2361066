// lifecycle-gc: Cistern's own lifecycle-policy evaluation and garbage collection, measured
// in-process (no peer to compare with, so every row carries an absolute target or none).
//   1. evaluateLifecycle over 100,000 images of one repository (3-rule policy)
//   2. 10,000 repositories × 10 images: the evaluator alone, then LifecycleRunner (dry run) over SQLite
//   3. GarbageCollector mark and sweep over 1,000,000 blobs (SQLite metadata, stub blob store),
//      run in a child process so its wall time and peak RSS (VmHWM) are its own
//
// This file is also the entry point of that child (see the bottom): `node --import tsx
// lifecycle-gc.ts --gc-child '<json>'` prints one JSON line with the GC figures.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { defineScenario, candidateBelow, type ScenarioContext } from '../lib/framework.ts';
import { BrokenRunError, runCommand } from '../lib/proc.ts';
import { readProcMemory } from '../lib/rss.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { envNumber, median } from '../lib/util.ts';
import { evaluateLifecycle, type Decision, type ImageInfo } from '../../src/policy/evaluate.ts';
import { parseLifecyclePolicy, type LifecyclePolicy } from '../../src/policy/lifecycle-policy.ts';
import { LifecycleRunner } from '../../src/policy/lifecycle-runner.ts';
import { GarbageCollector, type GcReport } from '../../src/registry/garbage-collector.ts';
import { BlobLocks } from '../../src/registry/blob-locks.ts';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite/sqlite-metadata-store.ts';
import type { Registry } from '../../src/registry/registry.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import type { Digest } from '../../src/domain/digest.ts';

const SELF = join(REPO_ROOT, 'bench', 'scenarios', 'lifecycle-gc.ts');
const GC_CHILD_FLAG = '--gc-child';
const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;
const MiB = 1024 * 1024;
const TARGET_S = 2;

/** Rule 1 keeps the 50 newest `prod*` images, rule 2 expires untagged images after 14 days, rule 3 keeps 1000. */
const BIG_REPO_POLICY = JSON.stringify({
  rules: [
    {
      rulePriority: 1,
      description: 'keep the 50 newest prod images',
      selection: { tagStatus: 'tagged', tagPrefixList: ['prod'], countType: 'imageCountMoreThan', countNumber: 50 },
      action: { type: 'expire' },
    },
    {
      rulePriority: 2,
      description: 'expire untagged images after 14 days',
      selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
      action: { type: 'expire' },
    },
    {
      rulePriority: 3,
      description: 'keep at most 1000 images',
      selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1000 },
      action: { type: 'expire' },
    },
  ],
});
const KEEP = 3;
const KEEP3_POLICY = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":${KEEP}},"action":{"type":"expire"}}]}`;

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

// ---------------------------------------------------------------- deterministic data

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const digestOf = (text: string): Digest => `sha256:${sha256(text)}` as Digest;

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stateless 32-bit hash of an index (so parent and child derive the same value independently). */
function hash32(i: number): number {
  let x = (i ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Log-uniform size in [min, max) bytes. */
const logSize = (u: number, min: number, max: number): number => Math.floor(min * Math.pow(max / min, u));

/** A plausible OCI image manifest; its sha256 is its digest. */
function manifestJson(config: { digest: string; size: number }, layers: { digest: string; size: number }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
    }),
  );
}

/** Part 1: one repository. ~60% tagged (a tenth of those `prod-*`, some with a second tag), pushes over 2 years, ~30% pulled. */
function bigRepoImages(n: number, nowMs: number): ImageInfo[] {
  const rand = prng(0xc157e2);
  const images: ImageInfo[] = [];
  for (let i = 0; i < n; i++) {
    const pushedMs = nowMs - Math.floor(rand() * 2 * YEAR_MS);
    const tags: string[] = [];
    if (rand() < 0.6) {
      const kind = rand();
      tags.push(kind < 0.1 ? `prod-${i}` : kind < 0.5 ? `v1.${i}.0` : kind < 0.8 ? `dev-${i}` : `pr-${i}`);
      if (rand() < 0.1) tags.push(`git-${i.toString(16).padStart(8, '0')}`);
    }
    const pulled = rand() < 0.3 ? new Date(pushedMs + Math.floor(rand() * (nowMs - pushedMs))) : undefined;
    images.push({ digest: digestOf(`big-repo/${i}`), tags, pushedAt: new Date(pushedMs), lastPulledAt: pulled, sizeBytes: 1000 + i });
  }
  return images;
}

/** Part 2: `perRepo` images of repository `r`, ~60% tagged, pushes over 2 years. */
function smallRepoImages(r: number, perRepo: number, nowMs: number, rand: () => number): ImageInfo[] {
  const images: ImageInfo[] = [];
  for (let j = 0; j < perRepo; j++) {
    const tags = rand() < 0.6 ? [`v${j}`] : [];
    images.push({ digest: digestOf(`repo/${r}/${j}`), tags, pushedAt: new Date(nowMs - Math.floor(rand() * 2 * YEAR_MS)) });
  }
  return images;
}

const repoName = (r: number): string => `team-${String(r % 100).padStart(2, '0')}/service-${r}`;

/**
 * Expected expirations per rule priority, computed independently of the evaluator (plain sort + Set),
 * straight from the ECR rules: rules in priority order, each claims what it selects, claimed images still
 * count towards a later imageCountMoreThan, newest first by (pushedAt, digest).
 */
function referenceCounts(policy: LifecyclePolicy, images: readonly ImageInfo[], nowMs: number): Map<number, number> {
  const newestFirst = [...images].sort((a, b) => {
    const d = b.pushedAt.getTime() - a.pushedAt.getTime();
    return d !== 0 ? d : a.digest < b.digest ? 1 : a.digest > b.digest ? -1 : 0;
  });
  const claimed = new Set<string>();
  const counts = new Map<number, number>();
  for (const rule of [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority)) {
    const sel = rule.selection;
    const selects = (tags: readonly string[]): boolean =>
      sel.tagStatus === 'any'
        ? true
        : sel.tagStatus === 'untagged'
          ? tags.length === 0
          : sel.tagPrefixList !== undefined && sel.tagPrefixList.every((p) => tags.some((t) => t.startsWith(p)));
    let expired = 0;
    if (sel.countType === 'imageCountMoreThan') {
      let seen = 0;
      for (const img of newestFirst) {
        if (!selects(img.tags)) continue;
        seen++;
        if (claimed.has(img.digest)) continue;
        claimed.add(img.digest);
        if (seen > sel.countNumber) expired++;
      }
    } else {
      const cutoff = nowMs - sel.countNumber * DAY_MS;
      for (const img of newestFirst) {
        if (claimed.has(img.digest) || !selects(img.tags)) continue;
        claimed.add(img.digest);
        const pulled = img.lastPulledAt && img.lastPulledAt > img.pushedAt ? img.lastPulledAt : img.pushedAt;
        const t = sel.countType === 'sinceImagePushed' ? img.pushedAt : pulled;
        if (t.getTime() < cutoff) expired++;
      }
    }
    counts.set(rule.rulePriority, expired);
  }
  return counts;
}

function countByRule(decisions: readonly Decision[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const d of decisions) counts.set(d.appliedRulePriority, (counts.get(d.appliedRulePriority) ?? 0) + 1);
  return counts;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const fmtInt = (n: number): string => n.toLocaleString('en-US');

// ---------------------------------------------------------------- part 1

function bigRepo(ctx: ScenarioContext, n: number, repeats: number): void {
  const nowMs = Date.UTC(2025, 0, 1);
  const now = new Date(nowMs);
  const t0 = performance.now();
  const images = bigRepoImages(n, nowMs);
  const policy = parseLifecyclePolicy(BIG_REPO_POLICY);
  ctx.log(`generated ${fmtInt(n)} images in ${secs(performance.now() - t0)}`);

  const times: number[] = [];
  let decisions: Decision[] = [];
  for (let rep = 0; rep < repeats; rep++) {
    const s = performance.now();
    decisions = evaluateLifecycle(policy, images, now);
    times.push(performance.now() - s);
    ctx.log(`evaluate ${fmtInt(n)} images, run ${rep + 1}/${repeats}: ${secs(times[rep]!)} (${fmtInt(decisions.length)} expired)`);
  }
  const got = countByRule(decisions);
  const want = referenceCounts(policy, images, nowMs);
  const invalid: string[] = [];
  for (const p of [1, 2, 3]) {
    if ((got.get(p) ?? 0) !== (want.get(p) ?? 0)) {
      invalid.push(`rule ${p} expired ${got.get(p) ?? 0} images, the reference computation expects ${want.get(p) ?? 0}`);
    }
  }
  ctx.record({
    case: `evaluate 1 repo × ${fmtInt(n)} images, 3 rules`,
    metric: `evaluateLifecycle (median of ${repeats})`,
    unit: 's',
    better: 'lower',
    baseline: null,
    candidate: median(times) / 1000,
    target: candidateBelow(TARGET_S, `< ${TARGET_S} s`),
    invalid,
    detail: {
      runsMs: times,
      images: n,
      tagged: images.filter((i) => i.tags.length > 0).length,
      prodTagged: images.filter((i) => i.tags.some((t) => t.startsWith('prod'))).length,
      expiredByRule: Object.fromEntries(got),
    },
  });
}

// ---------------------------------------------------------------- part 2

function manyReposInProcess(ctx: ScenarioContext, repos: number, perRepo: number, repeats: number): void {
  const now = new Date();
  const rand = prng(0x5eed02);
  const all: ImageInfo[][] = [];
  for (let r = 0; r < repos; r++) all.push(smallRepoImages(r, perRepo, now.getTime(), rand));
  const expected = repos * Math.max(0, perRepo - KEEP);

  const times: number[] = [];
  let expired = 0;
  for (let rep = 0; rep < repeats; rep++) {
    expired = 0;
    const s = performance.now();
    // Parsed per repository, as LifecycleRunner does (each repository carries its own policy text).
    for (const images of all) expired += evaluateLifecycle(parseLifecyclePolicy(KEEP3_POLICY), images, now).length;
    times.push(performance.now() - s);
    ctx.log(`evaluate ${fmtInt(repos)} repos × ${perRepo}, run ${rep + 1}/${repeats}: ${secs(times[rep]!)} (${fmtInt(expired)} expired)`);
  }
  ctx.record({
    case: `evaluate ${fmtInt(repos)} repos × ${perRepo} images, keep ${KEEP}`,
    metric: `parse + evaluate, in memory (median of ${repeats})`,
    unit: 's',
    better: 'lower',
    baseline: null,
    candidate: median(times) / 1000,
    target: candidateBelow(TARGET_S, `< ${TARGET_S} s`),
    invalid: expired === expected ? [] : [`${expired} images expired, expected ${expected}`],
    detail: { runsMs: times, expired },
  });
}

/** Fills a SQLite metadata store with `repos` × `perRepo` images (config + shared base layer + own layer each). */
async function seedLifecycleStore(ctx: ScenarioContext, path: string, repos: number, perRepo: number, nowMs: number): Promise<Record<string, number>> {
  const setup: Record<string, number> = {};
  let t = performance.now();
  const store = SqliteMetadataStore.open(path);
  const at = new Date(nowMs - 2 * YEAR_MS - DAY_MS);
  for (let r = 0; r < repos; r++) {
    await store.repositories.create(repoName(r), { settings: { lifecyclePolicy: KEEP3_POLICY } }, at);
  }
  await store.close();
  setup['repositoriesCreateMs'] = performance.now() - t;
  ctx.log(`created ${fmtInt(repos)} repositories with a lifecycle policy (repositories.create) in ${secs(setup['repositoriesCreateMs'])}`);

  // The images go in through SQL in one transaction: manifests.put costs one transaction each.
  t = performance.now();
  const db = new Database(path);
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144'); // 256 MiB, this seeding connection only
  const ids = new Map(
    (db.prepare('SELECT id, name FROM repositories').all() as { id: number; name: string }[]).map((row) => [row.name, row.id]),
  );
  const insManifest = db.prepare(
    'INSERT INTO manifests (repository_id, digest, media_type, size, content, pushed_at, last_pulled_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
  );
  const insRef = db.prepare("INSERT OR IGNORE INTO manifest_references (manifest_id, kind, digest) VALUES (?, 'blob', ?)");
  const insLink = db.prepare('INSERT OR IGNORE INTO blob_links (repository_id, digest, size, linked_at) VALUES (?, ?, ?, ?)');
  const insTag = db.prepare('INSERT INTO tags (repository_id, name, digest, updated_at, checked_at) VALUES (?, ?, ?, ?, ?)');
  const rand = prng(0x5eed02);
  db.transaction(() => {
    for (let r = 0; r < repos; r++) {
      const repoId = ids.get(repoName(r));
      if (repoId === undefined) throw new BrokenRunError(`repository ${repoName(r)} was not created`);
      const base = { digest: digestOf(`base/${r % 50}`), size: logSize(rand(), 2 * MiB, 80 * MiB) };
      for (const image of smallRepoImages(r, perRepo, nowMs, rand)) {
        const config = { digest: digestOf(`config/${image.digest}`), size: logSize(rand(), 1000, 20_000) };
        const layer = { digest: digestOf(`layer/${image.digest}`), size: logSize(rand(), 10_000, 200 * MiB) };
        // Image digests and push times come from smallRepoImages (same shape as the in-memory case), not from the content.
        const content = manifestJson(config, [base, layer]);
        const pushed = image.pushedAt.getTime();
        const pulled = rand() < 0.3 ? pushed + Math.floor(rand() * (nowMs - pushed)) : null;
        const { id } = insManifest.get(repoId, image.digest, OCI_MANIFEST, content.length, content, pushed, pulled) as { id: number };
        for (const blob of [config, base, layer]) {
          insRef.run(id, blob.digest);
          insLink.run(repoId, blob.digest, blob.size, pushed);
        }
        for (const tag of image.tags) insTag.run(repoId, tag, image.digest, pushed, pushed);
      }
    }
  })();
  db.close();
  setup['manifestsSqlMs'] = performance.now() - t;
  ctx.log(`inserted ${fmtInt(repos * perRepo)} manifests (+ references, links, tags) by SQL in ${secs(setup['manifestsSqlMs'])}`);
  return setup;
}

/** manifests.put rate on a scratch database, to say what seeding through the store API would cost. */
async function measurePutRate(path: string, count: number): Promise<number> {
  const store = SqliteMetadataStore.open(path);
  try {
    const t = performance.now();
    for (let i = 0; i < count; i++) {
      const config = { digest: digestOf(`put-config/${i}`), size: 1500 };
      const layer = { digest: digestOf(`put-layer/${i}`), size: 5 * MiB };
      const content = manifestJson(config, [layer]);
      await store.manifests.put({
        repository: repoName(i % 100),
        digest: `sha256:${createHash('sha256').update(content).digest('hex')}` as Digest,
        mediaType: OCI_MANIFEST,
        content,
        references: { blobs: [config.digest, layer.digest] as Digest[], manifests: [] },
        ...(i % 5 < 3 ? { tag: `v${i}` } : {}),
        at: new Date(),
      });
    }
    return (performance.now() - t) / count;
  } finally {
    await store.close();
  }
}

async function manyReposRunner(ctx: ScenarioContext, dir: string, repos: number, perRepo: number, repeats: number): Promise<void> {
  const path = join(dir, 'lifecycle.sqlite');
  const setupStart = performance.now();
  const setup = await seedLifecycleStore(ctx, path, repos, perRepo, Date.now());
  const setupMs = performance.now() - setupStart;
  const putSample = Math.min(2000, repos * perRepo);
  const putMs = await measurePutRate(join(dir, 'put-rate.sqlite'), putSample);
  ctx.log(`manifests.put: ${putMs.toFixed(3)} ms each over ${fmtInt(putSample)} puts`);

  const store = SqliteMetadataStore.open(path);
  ctx.defer(() => store.close());
  const registry = {
    deleteManifest: async () => {
      throw new Error('the dry run must not delete');
    },
  } as unknown as Registry;
  const runner = new LifecycleRunner({
    metadata: store,
    registry,
    flushPulls: async () => {},
    log: pino({ level: 'silent' }),
    now: () => new Date(),
  });
  const times: number[] = [];
  const invalid = new Set<string>();
  const expected = repos * Math.max(0, perRepo - KEEP);
  let expired = 0;
  for (let rep = 0; rep < repeats; rep++) {
    const s = performance.now();
    const reports = await runner.run({ dryRun: true });
    times.push(performance.now() - s);
    expired = reports.reduce((sum, r) => sum + r.expired.length, 0);
    ctx.log(`LifecycleRunner dry run over ${fmtInt(reports.length)} repos, run ${rep + 1}/${repeats}: ${secs(times[rep]!)} (${fmtInt(expired)} would expire)`);
    if (reports.length !== repos) invalid.add(`the run reported ${reports.length} repositories, expected ${repos}`);
    if (expired !== expected) invalid.add(`${expired} images would expire, expected ${expected}`);
  }
  ctx.record({
    case: `LifecycleRunner dry run, SQLite, ${fmtInt(repos)} repos × ${perRepo}`,
    metric: `run({dryRun}) (median of ${repeats})`,
    unit: 's',
    better: 'lower',
    baseline: null,
    candidate: median(times) / 1000,
    target: candidateBelow(TARGET_S, `< ${TARGET_S} s`),
    invalid: [...invalid],
    detail: { runsMs: times, expired },
  });
  ctx.record({
    case: `  seeding that store (not part of the run)`,
    metric: 'repositories.create + SQL batch',
    unit: 's',
    better: 'none',
    baseline: null,
    candidate: setupMs / 1000,
    detail: { ...setup, manifestsPutMsEach: putMs, manifestsPutSample: putSample },
  });
  ctx.note(
    `lifecycle store seeding: ${fmtInt(repos)} × repositories.create ${secs(setup['repositoriesCreateMs']!)}, ` +
      `${fmtInt(repos * perRepo)} manifests by SQL in one transaction ${secs(setup['manifestsSqlMs']!)}; ` +
      `through manifests.put (one transaction each) it would take ≈ ${secs(putMs * repos * perRepo)} ` +
      `(${putMs.toFixed(2)} ms per put, measured over ${fmtInt(putSample)} puts)`,
  );
}

// ---------------------------------------------------------------- part 3: GC

/** Blob `i` of the GC case: every 10th is garbage, every 100th garbage blob keeps a stale link. */
const gcBlob = (i: number): { digest: Digest; size: number } => ({
  digest: digestOf(`gc-blob/${i}`),
  size: logSize(hash32(i) / 4294967296, 1000, 64 * MiB),
});
const isGarbage = (i: number): boolean => i % 10 === 9;
const hasStaleLink = (i: number): boolean => i % 100 === 99;
/** The k-th live blob index (live = not i % 10 === 9). */
const liveIndex = (k: number): number => Math.floor(k / 9) * 10 + (k % 9);
const BLOBS_PER_MANIFEST = 5;
const SHARED_BASES = 180;

interface GcChildArgs {
  dbPath: string;
  blobs: number;
  modifiedAtMs: number;
}

interface GcExpected {
  staleLinks: number;
  garbage: number;
  garbageBytes: number;
  manifests: number;
  repositories: number;
}

/** The GC database: ~90% of the blobs referenced by manifests (5 own + 1 shared base each), 1% stale links. */
function seedGcStore(path: string, blobs: number, oldMs: number): GcExpected {
  void SqliteMetadataStore.open(path).close(); // schema via the store's own migrations (close is synchronous)
  const db = new Database(path);
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -524288'); // 512 MiB for this seeding connection only: random-order index inserts
  const repositories = Math.max(1, Math.round(blobs / 100));
  const insRepo = db.prepare('INSERT INTO repositories (id, name, created_at) VALUES (?, ?, ?)');
  const insManifest = db.prepare(
    'INSERT INTO manifests (repository_id, digest, media_type, size, content, pushed_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
  );
  const insRef = db.prepare("INSERT OR IGNORE INTO manifest_references (manifest_id, kind, digest) VALUES (?, 'blob', ?)");
  const insLink = db.prepare('INSERT OR IGNORE INTO blob_links (repository_id, digest, size, linked_at) VALUES (?, ?, ?, ?)');
  const expected: GcExpected = { staleLinks: 0, garbage: 0, garbageBytes: 0, manifests: 0, repositories };
  db.transaction(() => {
    for (let r = 0; r < repositories; r++) insRepo.run(r + 1, repoName(r), oldMs);
    let group: { digest: Digest; size: number }[] = [];
    const flush = (): void => {
      if (group.length === 0) return;
      const m = expected.manifests++;
      const repoId = (m % repositories) + 1;
      const base = gcBlob(liveIndex(m % SHARED_BASES));
      const [config, ...layers] = group;
      const all = [...group, base];
      const content = manifestJson(config!, [base, ...layers]);
      const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
      const { id } = insManifest.get(repoId, digest, OCI_MANIFEST, content.length, content, oldMs) as { id: number };
      for (const b of all) {
        insRef.run(id, b.digest);
        insLink.run(repoId, b.digest, b.size, oldMs);
      }
      group = [];
    };
    for (let i = 0; i < blobs; i++) {
      const blob = gcBlob(i);
      if (isGarbage(i)) {
        expected.garbage++;
        expected.garbageBytes += blob.size;
        if (hasStaleLink(i)) {
          expected.staleLinks++;
          insLink.run((i % repositories) + 1, blob.digest, blob.size, oldMs);
        }
        continue;
      }
      group.push(blob);
      if (group.length === BLOBS_PER_MANIFEST) flush();
    }
    flush();
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return expected;
}

interface GcRunFigures {
  ms: number;
  report: GcReport;
  /** VmRSS right before the run (after a forced V8 GC), bytes. */
  rssBefore: number;
  /** VmHWM read after the run, bytes: the peak during the run when the reset worked. */
  hwm: number;
  deleteCalls: number;
}

interface GcChildResult {
  listOnlyMs: number;
  afterOpen: { rss: number; hwm: number };
  hwmReset: boolean;
  dry: GcRunFigures;
  real: GcRunFigures;
}

async function gcChild(args: GcChildArgs): Promise<GcChildResult> {
  const modifiedAt = new Date(args.modifiedAtMs);
  let deleteCalls = 0;
  const blobs = {
    async *list() {
      for (let i = 0; i < args.blobs; i++) {
        const { digest, size } = gcBlob(i);
        yield { digest, size, modifiedAt: new Date(modifiedAt) };
      }
    },
    async delete(): Promise<boolean> {
      deleteCalls++;
      return true;
    },
  } as unknown as BlobStore;
  const gcNow = (): void => (globalThis as { gc?: () => void }).gc?.();
  const mem = (): { rss: number; hwm: number } => readProcMemory(process.pid) ?? { rss: 0, hwm: 0 };
  /** Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0). */
  const resetHwm = (): boolean => {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      return true;
    } catch {
      return false;
    }
  };

  // What the stub's listing alone costs (hashing 1M digests), to tell it apart from the collector's work.
  let t = performance.now();
  let listed = 0;
  for await (const _ of blobs.list()) listed++;
  const listOnlyMs = performance.now() - t;
  if (listed !== args.blobs) throw new Error(`stub listed ${listed} blobs`);

  const metadata = SqliteMetadataStore.open(args.dbPath);
  const gc = new GarbageCollector({
    metadata,
    blobs,
    locks: new BlobLocks(),
    graceMs: 0,
    now: () => new Date(),
    log: pino({ level: 'silent' }),
  });
  gcNow();
  const afterOpen = mem();
  let hwmReset = true;
  const measure = async (dryRun: boolean): Promise<GcRunFigures> => {
    gcNow();
    const rssBefore = mem().rss;
    hwmReset = resetHwm() && hwmReset;
    deleteCalls = 0;
    t = performance.now();
    const report = await gc.run({ dryRun });
    const ms = performance.now() - t;
    return { ms, report, rssBefore, hwm: mem().hwm, deleteCalls };
  };
  const dry = await measure(true);
  const real = await measure(false);
  await metadata.close();
  return { listOnlyMs, afterOpen, hwmReset, dry, real };
}

async function garbageCollection(ctx: ScenarioContext, dir: string, blobs: number): Promise<void> {
  const dbPath = join(dir, 'gc.sqlite');
  const oldMs = Date.now() - 30 * DAY_MS;
  let t = performance.now();
  const expected = seedGcStore(dbPath, blobs, oldMs);
  const setupMs = performance.now() - t;
  ctx.log(
    `GC store: ${fmtInt(expected.repositories)} repos, ${fmtInt(expected.manifests)} manifests, ` +
      `${fmtInt(blobs - expected.garbage)} live blobs, ${fmtInt(expected.garbage)} garbage (${fmtInt(expected.staleLinks)} with stale links), ` +
      `seeded in ${secs(setupMs)}`,
  );

  t = performance.now();
  const args: GcChildArgs = { dbPath, blobs, modifiedAtMs: oldMs };
  const res = await runCommand(process.execPath, ['--expose-gc', '--import', 'tsx', SELF, GC_CHILD_FLAG, JSON.stringify(args)], {
    cwd: REPO_ROOT,
    timeoutMs: 600_000,
  });
  const line = res.stdout.trim().split('\n').pop() ?? '';
  if (res.code !== 0 || !line.startsWith('{')) {
    throw new BrokenRunError(`GC child exited ${res.code ?? res.signal}: ${res.stderr.trim().split('\n').slice(-10).join('\n')}`);
  }
  const r = JSON.parse(line) as GcChildResult;
  ctx.log(`GC child finished in ${secs(performance.now() - t)} (stub listing alone ${secs(r.listOnlyMs)})`);

  const check = (f: GcRunFigures, dryRun: boolean): string[] => {
    const out: string[] = [];
    if (f.report.blobsDeleted !== expected.garbage) out.push(`${f.report.blobsDeleted} blobs collected, expected ${expected.garbage}`);
    if (f.report.linksRemoved !== expected.staleLinks) out.push(`${f.report.linksRemoved} links removed, expected ${expected.staleLinks}`);
    if (f.report.bytesReclaimed !== expected.garbageBytes) out.push(`${f.report.bytesReclaimed} bytes reclaimed, expected ${expected.garbageBytes}`);
    if (f.deleteCalls !== (dryRun ? 0 : expected.garbage)) out.push(`blob store delete() called ${f.deleteCalls} times`);
    return out;
  };
  const blobsLabel = `${fmtInt(blobs)} blobs, ${fmtInt(expected.garbage)} garbage`;
  for (const [label, f, dryRun] of [
    ['dry run', r.dry, true],
    ['run (deletes)', r.real, false],
  ] as const) {
    const invalid = check(f, dryRun);
    ctx.log(
      `GC ${label}: ${secs(f.ms)}, VmRSS before ${(f.rssBefore / MiB).toFixed(0)} MiB, peak ${(f.hwm / MiB).toFixed(0)} MiB, ` +
        `${JSON.stringify(f.report)}`,
    );
    ctx.record({
      case: `GC ${label}, ${blobsLabel}`,
      metric: 'wall time',
      unit: 's',
      better: 'lower',
      baseline: null,
      candidate: f.ms / 1000,
      invalid,
      detail: { ...f, stubListingMs: r.listOnlyMs },
    });
    ctx.record({
      case: `GC ${label}, ${blobsLabel}`,
      metric: r.hwmReset ? 'peak RSS (VmHWM)' : 'VmHWM since child start',
      unit: 'MiB',
      better: 'lower',
      baseline: null,
      candidate: f.hwm / MiB,
      detail: { rssBeforeMiB: f.rssBefore / MiB, growthMiB: (f.hwm - f.rssBefore) / MiB },
    });
  }
  ctx.record({
    case: `  seeding the GC store (not part of the run)`,
    metric: 'SQL batch',
    unit: 's',
    better: 'none',
    baseline: null,
    candidate: setupMs / 1000,
    detail: expected,
  });
  ctx.note(
    `GC: ${fmtInt(expected.manifests)} manifests in ${fmtInt(expected.repositories)} repos reference the live blobs; ` +
      `the stub blob store's list() alone takes ${secs(r.listOnlyMs)} (sha256 per digest), included in the GC times; ` +
      `the GC child's RSS after opening the store: ${(r.afterOpen.rss / MiB).toFixed(0)} MiB` +
      (r.hwmReset ? '; VmHWM reset (clear_refs) before each run' : '; VmHWM could not be reset: figures are peaks since child start'),
  );
}

// ---------------------------------------------------------------- scenario

export default defineScenario({
  name: 'lifecycle-gc',
  description: 'lifecycle evaluation (1 big repo, 10k repos, runner over SQLite) and GC mark-and-sweep, in-process',
  async run(ctx) {
    const images = Math.max(1, Math.round(envNumber('BENCH_LIFECYCLE_IMAGES', 100_000)));
    const repos = Math.max(1, Math.round(envNumber('BENCH_LIFECYCLE_REPOS', 10_000)));
    const perRepo = Math.max(1, Math.round(envNumber('BENCH_LIFECYCLE_REPO_IMAGES', 10)));
    const repeats = Math.max(1, Math.round(envNumber('BENCH_LIFECYCLE_REPEATS', 5)));
    const runnerRepeats = Math.max(1, Math.round(envNumber('BENCH_LIFECYCLE_RUNNER_REPEATS', 3)));
    const gcBlobs = Math.max(10, Math.round(envNumber('BENCH_GC_BLOBS', 1_000_000)));
    if (ctx.options.candidate !== 'cistern') ctx.note('measures Cistern code in-process; --candidate does not apply');

    bigRepo(ctx, images, repeats);
    manyReposInProcess(ctx, repos, perRepo, repeats);
    await manyReposRunner(ctx, await ctx.tmpdir('lifecycle'), repos, perRepo, runnerRepeats);
    await garbageCollection(ctx, await ctx.tmpdir('gc'), gcBlobs);
  },
});

// ---------------------------------------------------------------- child entry

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === GC_CHILD_FLAG) {
  gcChild(JSON.parse(process.argv[3] ?? '{}') as GcChildArgs).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
