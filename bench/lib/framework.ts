// The scenario framework: how a benchmark group is declared, the context it
// runs with, and the result rows it records.
//
//   export default defineScenario({
//     name: 'my-group',
//     description: 'what it measures',
//     requires: ['wrk'],                       // commands that must be on PATH
//     async run(ctx) {
//       const base = await ctx.launchBaseline();   // Distribution
//       const cand = await ctx.launchCandidate();  // Cistern (or a stand-in)
//       ...measure...
//       ctx.record({ case: 'x', metric: 'rps', unit: 'req/s', better: 'higher',
//                    baseline: 123, candidate: 456, target: ratioAtLeast(2) });
//     },
//   });
//
// Everything launched or created through ctx is torn down when run() returns
// or throws. A thrown error marks the scenario BROKEN (non-zero exit); a row
// with `invalid` reasons is INVALID (non-zero exit); a target miss is only MISS.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir as osTmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTmpDir, removeTmpDir } from './cleanup.ts';
import { launchServer, serverVersion, type RegistryServer, type ServerKind, type ServerOptions } from './servers.ts';

export interface BenchOptions {
  /** Seconds per measured load run (BENCH_DURATION, default 10). */
  durationSec: number;
  /** Seconds of warm-up before each measured load run (BENCH_WARMUP, default 2). */
  warmupSec: number;
  /** What plays the candidate role (--candidate / BENCH_CANDIDATE, default cistern). */
  candidate: ServerKind;
  /** Keep temp dirs for inspection (BENCH_KEEP_TMP=1). */
  keepTmp: boolean;
}

export type Better = 'higher' | 'lower' | 'none';

/** Ratio targets compare candidate/baseline; absolute targets compare the candidate's value (row unit). */
export type Target =
  | { kind: 'ratio'; op: '>=' | '<='; value: number; label?: string }
  | { kind: 'candidate'; op: '<' | '<=' | '>=' | '>'; value: number; label?: string };

export const ratioAtLeast = (value: number): Target => ({ kind: 'ratio', op: '>=', value });
export const ratioAtMost = (value: number): Target => ({ kind: 'ratio', op: '<=', value });
export const candidateBelow = (value: number, label?: string): Target =>
  label === undefined ? { kind: 'candidate', op: '<', value } : { kind: 'candidate', op: '<', value, label };
export const candidateAtLeast = (value: number, label?: string): Target =>
  label === undefined ? { kind: 'candidate', op: '>=', value } : { kind: 'candidate', op: '>=', value, label };

export interface RowInput {
  /** What was exercised, e.g. "blob GET 256 MiB, 8 clients". */
  case: string;
  /** What was measured, e.g. "throughput". */
  metric: string;
  /** Unit of baseline/candidate values, e.g. "MiB/s", "req/s", "ms", "MiB", "count". */
  unit: string;
  better: Better;
  baseline: number | null;
  candidate: number | null;
  target?: Target;
  /** Reasons the figures can't be trusted (non-2xx responses, ...). Non-empty => INVALID. */
  invalid?: string[];
  /** Free-form extra data kept in the JSON summary. */
  detail?: unknown;
}

export type RowStatus = 'PASS' | 'MISS' | 'INVALID' | 'INFO';

export interface Row extends Required<Pick<RowInput, 'case' | 'metric' | 'unit' | 'better'>> {
  baseline: number | null;
  candidate: number | null;
  /** candidate / baseline */
  ratio: number | null;
  target: Target | null;
  targetLabel: string;
  status: RowStatus;
  invalid: string[];
  detail?: unknown;
}

export interface Subject {
  label: string;
  kind: ServerKind;
  version: string;
}

export interface ScenarioResult {
  name: string;
  description: string;
  status: 'ok' | 'invalid' | 'broken';
  error?: string;
  startedAt: string;
  durationMs: number;
  /** Fraction of host CPU busy (other processes) in the second before the scenario. */
  hostCpuBusyBefore?: number;
  /** Average fraction of host CPU used by processes outside the harness while the scenario ran. */
  foreignCpuDuring?: number;
  subjects: { baseline?: Subject; candidate?: Subject };
  rows: Row[];
  notes: string[];
}

export interface ScenarioContext {
  readonly name: string;
  readonly options: BenchOptions;
  /** Progress line on stderr. */
  log(msg: string): void;
  /** A remark printed under the scenario's table and kept in the JSON. */
  note(msg: string): void;
  /** A fresh temp dir, removed after the scenario. */
  tmpdir(label?: string): Promise<string>;
  /** Run at teardown (LIFO), before temp dirs are removed. */
  defer(fn: () => Promise<void> | void): void;
  /** Start the baseline peer (CNCF Distribution). */
  launchBaseline(opts?: ServerOptions): Promise<RegistryServer>;
  /** Start the candidate (Cistern, or Distribution with --candidate distribution). */
  launchCandidate(opts?: ServerOptions): Promise<RegistryServer>;
  /** Start any extra server (e.g. an upstream for pull-through tests); not a table column. */
  launch(kind: ServerKind, opts?: ServerOptions): Promise<RegistryServer>;
  record(row: RowInput): Row;
}

export interface Scenario {
  name: string;
  description: string;
  /** Commands that must be on PATH (checked before run). */
  requires?: string[];
  run(ctx: ScenarioContext): Promise<void>;
}

export function defineScenario(s: Scenario): Scenario {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(s.name)) throw new Error(`bad scenario name ${s.name}`);
  return s;
}

// ---------------------------------------------------------------- evaluation

function targetLabel(t: Target | undefined): string {
  if (t === undefined) return '';
  if (t.label !== undefined) return t.label;
  const op = t.op.replace('>=', '≥').replace('<=', '≤');
  return t.kind === 'ratio' ? `${op} ${t.value}x` : `${op} ${t.value}`;
}

function compare(v: number, op: Target['op'], ref: number): boolean {
  switch (op) {
    case '<':
      return v < ref;
    case '<=':
      return v <= ref;
    case '>':
      return v > ref;
    case '>=':
      return v >= ref;
  }
}

export function evaluateRow(input: RowInput): Row {
  const { baseline, candidate } = input;
  const ratio = baseline !== null && candidate !== null && baseline !== 0 ? candidate / baseline : null;
  const invalid = [...(input.invalid ?? [])];
  const t = input.target;
  let status: RowStatus = 'INFO';
  if (invalid.length > 0) status = 'INVALID';
  else if (t !== undefined) {
    const v = t.kind === 'ratio' ? ratio : candidate;
    status = v !== null && Number.isFinite(v) && compare(v, t.op, t.value) ? 'PASS' : 'MISS';
  }
  const row: Row = {
    case: input.case,
    metric: input.metric,
    unit: input.unit,
    better: input.better,
    baseline,
    candidate,
    ratio,
    target: t ?? null,
    targetLabel: targetLabel(t),
    status,
    invalid,
  };
  if (input.detail !== undefined) row.detail = input.detail;
  return row;
}

// ---------------------------------------------------------------- running

export async function runScenario(
  scenario: Scenario,
  options: BenchOptions,
  log: (msg: string) => void,
): Promise<ScenarioResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const result: ScenarioResult = {
    name: scenario.name,
    description: scenario.description,
    status: 'ok',
    startedAt: startedAt.toISOString(),
    durationMs: 0,
    subjects: {},
    rows: [],
    notes: [],
  };
  const deferred: Array<() => Promise<void> | void> = [];
  const tmpDirs: string[] = [];
  let root: string | undefined;
  const tmpdir = async (label = 'tmp'): Promise<string> => {
    if (root === undefined) {
      root = await mkdtemp(join(osTmpdir(), `cistern-bench-${scenario.name}-`));
      trackTmpDir(root);
      tmpDirs.push(root);
    }
    return mkdtemp(join(root, `${label.replace(/[^a-zA-Z0-9_-]/g, '_')}-`));
  };
  const launch = async (kind: ServerKind, opts?: ServerOptions): Promise<RegistryServer> => {
    const label = opts?.label ?? kind;
    const dir = await tmpdir(label);
    log(`starting ${label} (${kind})`);
    const srv = await launchServer(kind, dir, opts);
    deferred.push(() => srv.stop());
    log(`${label} ready at ${srv.baseUrl} (pid ${srv.pid})`);
    return srv;
  };
  const ctx: ScenarioContext = {
    name: scenario.name,
    options,
    log,
    note: (msg) => {
      result.notes.push(msg);
      log(`note: ${msg}`);
    },
    tmpdir,
    defer: (fn) => deferred.push(fn),
    launch,
    launchBaseline: async (opts) => {
      const srv = await launch('distribution', { ...opts, label: opts?.label ?? 'distribution' });
      result.subjects.baseline = { label: srv.label, kind: srv.kind, version: await serverVersion(srv.kind) };
      return srv;
    },
    launchCandidate: async (opts) => {
      const kind = options.candidate;
      const label = opts?.label ?? (kind === 'cistern' ? 'cistern' : 'stand-in');
      const srv = await launch(kind, { ...opts, label });
      result.subjects.candidate = { label: srv.label, kind: srv.kind, version: await serverVersion(srv.kind) };
      return srv;
    },
    record: (input) => {
      const row = evaluateRow(input);
      result.rows.push(row);
      if (row.status === 'INVALID' && result.status === 'ok') result.status = 'invalid';
      return row;
    },
  };

  try {
    await scenario.run(ctx);
  } catch (err) {
    result.status = 'broken';
    result.error = err instanceof Error ? err.message : String(err);
    log(`BROKEN: ${result.error}`);
  } finally {
    for (const fn of deferred.reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`teardown error: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const d of tmpDirs) await removeTmpDir(d);
    result.durationMs = performance.now() - t0;
  }
  return result;
}
