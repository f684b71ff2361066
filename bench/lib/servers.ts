// Launchers for the registries under test. Each server is a separate process
// in its own temp work dir, listening on an ephemeral 127.0.0.1 port, and is
// "ready" once GET /v2/ answers 200.
//
// To change how Cistern is started, edit cisternCommand()/cisternConfig()
// below (or set BENCH_CISTERN_ENTRY, e.g. to dist/main.js for a built server).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, isAbsolute } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { launchProcess, runCommand, BrokenRunError, type ManagedProcess } from './proc.ts';
import { freePort, BENCH_HOST } from './port.ts';
import { waitForHttp200 } from './http.ts';
import { snapshotMemory, type MemorySnapshot } from './rss.ts';
import { REPO_ROOT } from './paths.ts';

export type ServerKind = 'distribution' | 'cistern';

export interface RegistryServer {
  kind: ServerKind;
  /** Column label in reports, e.g. "distribution" or "cistern". */
  label: string;
  baseUrl: string;
  port: number;
  pid: number;
  /** Storage root handed to the server. */
  dataDir: string;
  /** Holds config + log file. */
  workDir: string;
  configPath: string;
  proc: ManagedProcess;
  memory(): MemorySnapshot | undefined;
  stop(): Promise<void>;
}

export interface ServerOptions {
  label?: string;
  /** Deep-merged into the generated Distribution config (e.g. `{ proxy: { remoteurl } }`). */
  distributionConfig?: Record<string, unknown>;
  /** Deep-merged into the generated Cistern config. */
  cisternConfig?: Record<string, unknown>;
  readyTimeoutMs?: number;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

export function deepMerge(base: Plain, extra: Plain | undefined): Plain {
  if (extra === undefined) return base;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const cur = out[k];
    out[k] = isPlain(cur) && isPlain(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

// ---------------------------------------------------------------- Distribution

export const DISTRIBUTION_BIN = process.env['BENCH_DISTRIBUTION_BIN'] ?? '/usr/bin/docker-registry';

export function distributionConfig(port: number, dataDir: string): Plain {
  return {
    version: 0.1,
    log: { accesslog: { disabled: true }, level: 'warn' },
    storage: {
      filesystem: { rootdirectory: dataDir },
      // Debian's default config enables this cache; keep the peer at its usual setup.
      cache: { blobdescriptor: 'inmemory' },
      delete: { enabled: true },
    },
    http: { addr: `${BENCH_HOST}:${port}` },
  };
}

export async function launchDistribution(workDir: string, opts: ServerOptions = {}): Promise<RegistryServer> {
  if (!existsSync(DISTRIBUTION_BIN)) {
    throw new BrokenRunError(`${DISTRIBUTION_BIN} not found (apt-get install -y docker-registry)`);
  }
  return launchWithRetry('distribution', workDir, opts, async (port, dataDir, configPath) => {
    const cfg = deepMerge(distributionConfig(port, dataDir), opts.distributionConfig);
    await writeFile(configPath, stringify(cfg));
    return { command: DISTRIBUTION_BIN, args: ['serve', configPath], cwd: workDir };
  });
}

// ---------------------------------------------------------------- Cistern

/** Entry point relative to the repo root; *.ts runs through tsx's loader. */
export const CISTERN_ENTRY = process.env['BENCH_CISTERN_ENTRY'] ?? 'src/main.ts';

/** Extra node flags for Cistern, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a scenario. */
const CISTERN_NODE_ARGS = (process.env['BENCH_CISTERN_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

export function cisternAvailable(): boolean {
  return existsSync(isAbsolute(CISTERN_ENTRY) ? CISTERN_ENTRY : join(REPO_ROOT, CISTERN_ENTRY));
}

export function cisternCommand(configPath: string): { command: string; args: string[]; cwd: string } {
  const loader = CISTERN_ENTRY.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return {
    command: process.execPath,
    args: [...loader, ...CISTERN_NODE_ARGS, CISTERN_ENTRY, 'serve', '--config', configPath],
    cwd: REPO_ROOT,
  };
}

export function cisternConfig(port: number, dataDir: string): Plain {
  return {
    http: { host: BENCH_HOST, port },
    storage: { directory: dataDir },
    log: { level: 'warn' },
    // Distribution runs without auth here, so Cistern does too: the comparison is of the registry path.
    auth: { enabled: false },
  };
}

export async function launchCistern(workDir: string, opts: ServerOptions = {}): Promise<RegistryServer> {
  if (!cisternAvailable()) {
    throw new BrokenRunError(
      `Cistern entry ${CISTERN_ENTRY} not found (use --candidate distribution to benchmark a stand-in)`,
    );
  }
  const schema = CISTERN_POSTGRES ? `cistern_bench_${randomBytes(6).toString('hex')}` : undefined;
  const server = await launchWithRetry('cistern', workDir, opts, async (port, dataDir, configPath) => {
    const metadata = schema && { storage: { metadata: { driver: 'postgres', url: CISTERN_POSTGRES, schema } } };
    const cfg = deepMerge(deepMerge(cisternConfig(port, dataDir), metadata || undefined), opts.cisternConfig);
    await writeFile(configPath, stringify(cfg));
    return cisternCommand(configPath);
  });
  if (!schema) return server;
  return {
    ...server,
    stop: async () => {
      await server.stop();
      const client = new pg.Client({ connectionString: CISTERN_POSTGRES });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
    },
  };
}

/** BENCH_CISTERN_POSTGRES=postgres://…: Cistern keeps its metadata there (a fresh schema per server). */
const CISTERN_POSTGRES = process.env['BENCH_CISTERN_POSTGRES'];

export function launchServer(kind: ServerKind, workDir: string, opts: ServerOptions = {}): Promise<RegistryServer> {
  return kind === 'cistern' ? launchCistern(workDir, opts) : launchDistribution(workDir, opts);
}

// ---------------------------------------------------------------- common

type CommandFor = (
  port: number,
  dataDir: string,
  configPath: string,
) => Promise<{ command: string; args: string[]; cwd: string }>;

async function launchWithRetry(
  kind: ServerKind,
  workDir: string,
  opts: ServerOptions,
  commandFor: CommandFor,
): Promise<RegistryServer> {
  const dataDir = join(workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const configPath = join(workDir, kind === 'cistern' ? 'cistern.yaml' : 'config.yml');
  const logPath = join(workDir, 'server.log');
  const label = opts.label ?? kind;
  let lastError = '';
  // A freshly probed port can be taken by someone else before the server binds it: retry.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const spec = await commandFor(port, dataDir, configPath);
    const proc = launchProcess({ name: label, logPath, ...spec });
    const baseUrl = `http://${BENCH_HOST}:${port}`;
    const err = await waitForHttp200(`${baseUrl}/v2/`, opts.readyTimeoutMs ?? 30_000, () => proc.running());
    if (err === undefined) {
      return {
        kind,
        label,
        baseUrl,
        port,
        pid: proc.pid,
        dataDir,
        workDir,
        configPath,
        proc,
        memory: () => snapshotMemory(proc.pid),
        stop: () => proc.stop(),
      };
    }
    await proc.stop();
    const tail = proc.tail(20);
    lastError = `${err}\n--- ${label} log (${logPath}) ---\n${tail}`;
    if (!/address already in use/i.test(tail)) break;
  }
  throw new BrokenRunError(`${label} failed to start: ${lastError}`);
}

export async function serverVersion(kind: ServerKind): Promise<string> {
  if (kind === 'cistern') return `cistern ${CISTERN_ENTRY}${CISTERN_ENTRY.endsWith('.ts') ? ' (tsx)' : ''}`;
  try {
    const r = await runCommand(DISTRIBUTION_BIN, ['--version'], { timeoutMs: 10_000 });
    return r.stdout.trim() || r.stderr.trim();
  } catch {
    return 'unknown';
  }
}
