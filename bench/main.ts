// `npm run bench` — runs the selected benchmark scenarios against Cistern and
// its peers in the same run, prints a table and writes .bench/results-<ts>.json.
//
//   tsx bench/main.ts [--only NAME[,NAME]]... [--candidate cistern|distribution] [--list]
//
// Exit status: 0 when every scenario ran and produced valid figures (target
// misses included); 1 when a scenario broke (server failed to start, wrong
// bytes, ...) or a figure is INVALID (e.g. non-2xx responses under load).
import { parseArgs } from 'node:util';
import os from 'node:os';
import { installCleanupHandlers, setKeepTmp, cleanupAll } from './lib/cleanup.ts';
import { runScenario, type BenchOptions, type ScenarioResult } from './lib/framework.ts';
import { formatScenario, writeSummary } from './lib/report.ts';
import { RESULTS_DIR } from './lib/paths.ts';
import { runCommand } from './lib/proc.ts';
import { cisternAvailable, serverVersion, type ServerKind } from './lib/servers.ts';
import { wrkVersion } from './lib/wrk.ts';
import { envNumber } from './lib/util.ts';
import { hostCpuBusy, ForeignCpuMeter } from './lib/host.ts';

/** Warn when other processes keep the CPUs busier than this before a scenario. */
const BUSY_WARN = 0.1;
import { scenarios } from './scenarios/index.ts';

const USAGE = `usage: tsx bench/main.ts [options]
  --only NAME[,NAME]   run only these scenarios (repeatable; default: all)
  --candidate KIND     cistern (default) | distribution (a second Distribution as stand-in)
  --list               list scenarios and exit
  -h, --help
env: BENCH_DURATION (s per load run, default 10), BENCH_WARMUP (s, default 2),
     BENCH_CANDIDATE, BENCH_KEEP_TMP=1, BENCH_CISTERN_ENTRY (default src/main.ts),
     scenario-specific knobs: see bench/README.md`;

function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${msg}\n`);
}

async function commandExists(cmd: string): Promise<boolean> {
  try {
    const r = await runCommand('sh', ['-c', `command -v ${cmd}`], { timeoutMs: 5000 });
    return r.code === 0;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      candidate: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.list) {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(20)} ${s.description}\n`);
    return 0;
  }
  const candidate = values.candidate ?? process.env['BENCH_CANDIDATE'] ?? 'cistern';
  if (candidate !== 'cistern' && candidate !== 'distribution') {
    throw new Error(`--candidate must be cistern or distribution, got ${candidate}`);
  }
  const options: BenchOptions = {
    durationSec: envNumber('BENCH_DURATION', 10),
    warmupSec: envNumber('BENCH_WARMUP', 2),
    candidate: candidate as ServerKind,
    keepTmp: process.env['BENCH_KEEP_TMP'] === '1',
  };
  setKeepTmp(options.keepTmp);

  const only = (values.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const unknown = only.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s): ${unknown.join(', ')} (known: ${scenarios.map((s) => s.name).join(', ')})`);
  }
  const selected = only.length > 0 ? scenarios.filter((s) => only.includes(s.name)) : scenarios;

  if (options.candidate === 'cistern' && !cisternAvailable()) {
    log('Cistern entry point not found: its scenarios will be BROKEN (try --candidate distribution)');
  }

  const startedAt = new Date().toISOString();
  const results: ScenarioResult[] = [];
  for (const s of selected) {
    const missing: string[] = [];
    for (const cmd of s.requires ?? []) if (!(await commandExists(cmd))) missing.push(cmd);
    if (missing.length > 0) {
      const r: ScenarioResult = {
        name: s.name,
        description: s.description,
        status: 'broken',
        error: `missing required command(s): ${missing.join(', ')} (e.g. apt-get install -y ${missing.join(' ')})`,
        startedAt: new Date().toISOString(),
        durationMs: 0,
        subjects: {},
        rows: [],
        notes: [],
      };
      results.push(r);
      log(r.error ?? '');
      continue;
    }
    const busy = await hostCpuBusy(1000);
    log(`scenario ${s.name}: ${s.description} (host CPU ${(busy * 100).toFixed(0)}% busy before start)`);
    const meter = new ForeignCpuMeter().start();
    const r = await runScenario(s, options, (m) => log(`${s.name}: ${m}`));
    const foreign = meter.stop();
    r.hostCpuBusyBefore = busy;
    r.foreignCpuDuring = foreign;
    if (busy > BUSY_WARN || foreign > BUSY_WARN) {
      r.notes.push(
        `other processes kept the host CPU busy (${(busy * 100).toFixed(0)}% just before, ` +
          `${(foreign * 100).toFixed(0)}% on average during the scenario): figures are noisy`,
      );
    }
    results.push(r);
  }

  const exitCode = results.some((r) => r.status !== 'ok') ? 1 : 0;
  process.stdout.write(`\n${results.map(formatScenario).join('\n\n')}\n\n`);
  const path = await writeSummary(RESULTS_DIR, {
    startedAt,
    finishedAt: new Date().toISOString(),
    exitCode,
    host: {
      cpus: os.cpus().length,
      loadavg: os.loadavg(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memBytes: os.totalmem(),
      kernel: os.release(),
      node: process.version,
      wrk: await wrkVersion(),
      distribution: await serverVersion('distribution'),
    },
    options: { ...options, only: only.length > 0 ? only : 'all' },
    scenarios: results,
  });
  process.stdout.write(`summary: ${path}\n`);
  if (exitCode !== 0) {
    process.stdout.write(`result: ${results.filter((r) => r.status !== 'ok').map((r) => `${r.name} ${r.status.toUpperCase()}`).join(', ')}\n`);
  }
  return exitCode;
}

installCleanupHandlers();
main()
  .catch((err: unknown) => {
    log(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await cleanupAll();
    process.exit(code);
  });
