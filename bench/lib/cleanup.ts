// Process-wide registry of everything the harness must undo: child processes
// (each spawned in its own process group, so a group kill also reaches any
// grandchildren) and temp directories. Cleanup runs on normal completion, on
// SIGINT/SIGTERM/SIGHUP, on uncaught errors and, as a last resort, synchronously
// in the 'exit' handler.
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();
const tmpDirs = new Set<string>();
let keepTmp = false;

export function setKeepTmp(keep: boolean): void {
  keepTmp = keep;
}

export function trackChild(child: ChildProcess): void {
  if (child.pid === undefined) return;
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function trackTmpDir(dir: string): void {
  tmpDirs.add(dir);
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Signal the child's whole process group (children are spawned detached). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      if (isRunning(child)) child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM the group, escalate to SIGKILL after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!isRunning(child)) {
    // The leader is gone but stragglers in its group may remain.
    signalGroup(child, 'SIGKILL');
    return;
  }
  signalGroup(child, 'SIGTERM');
  if (!(await waitExit(child, graceMs))) {
    signalGroup(child, 'SIGKILL');
    await waitExit(child, 2000);
  } else {
    signalGroup(child, 'SIGKILL');
  }
}

const removals = new Map<string, Promise<void>>();

/** Remove a tracked temp dir. It stays tracked until gone, so an exit mid-way still cleans it. */
export function removeTmpDir(dir: string): Promise<void> {
  if (keepTmp) {
    if (tmpDirs.delete(dir)) process.stderr.write(`[bench] keeping temp dir ${dir}\n`);
    return Promise.resolve();
  }
  let p = removals.get(dir);
  if (p === undefined) {
    p = rm(dir, { recursive: true, force: true, maxRetries: 3 }).finally(() => {
      tmpDirs.delete(dir);
      removals.delete(dir);
    });
    removals.set(dir, p);
  }
  return p;
}

export async function cleanupAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 2000)));
  await Promise.allSettled([...tmpDirs].map((d) => removeTmpDir(d)));
}

function cleanupAllSync(): void {
  for (const c of children) signalGroup(c, 'SIGKILL');
  children.clear();
  if (keepTmp) return;
  for (const d of tmpDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tmpDirs.clear();
}

let installed = false;
let shuttingDown = false;

export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    if (shuttingDown) {
      cleanupAllSync();
      process.exit(code);
    }
    shuttingDown = true;
    process.stderr.write(`\n[bench] ${signal}: stopping child processes and removing temp dirs\n`);
    cleanupAll()
      .catch(() => undefined)
      .finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('SIGHUP', () => onSignal('SIGHUP', 129));
  const onFatal = (err: unknown) => {
    process.stderr.write(`[bench] fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (shuttingDown) return;
    shuttingDown = true;
    cleanupAll()
      .catch(() => undefined)
      .finally(() => process.exit(1));
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  process.on('exit', cleanupAllSync);
}
