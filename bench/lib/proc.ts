// Child-process helpers. Every child is spawned detached (own process group)
// and registered with cleanup.ts so it is stopped on any exit path.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { stopChild, trackChild, isRunning } from './cleanup.ts';

export class BrokenRunError extends Error {
  override readonly name = 'BrokenRunError';
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<ExitInfo>;
  running(): boolean;
  stop(): Promise<void>;
  /** Last `lines` lines of the combined stdout/stderr log. */
  tail(lines?: number): string;
}

export interface LaunchSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout+stderr are appended here (no pipes: a chatty server can't stall on backpressure). */
  logPath: string;
}

export function launchProcess(spec: LaunchSpec): ManagedProcess {
  const fd = openSync(spec.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  trackChild(child);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  if (child.pid === undefined) {
    throw new BrokenRunError(`${spec.name}: failed to spawn ${spec.command}`);
  }
  const pid = child.pid;
  const tail = (lines = 30): string => {
    try {
      return readFileSync(spec.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  return {
    name: spec.name,
    child,
    pid,
    logPath: spec.logPath,
    exited,
    running: () => isRunning(child),
    stop: () => stopChild(child),
    tail,
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a short-lived command to completion, capturing output (bounded by timeoutMs). */
export function runCommand(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      void stopChild(child, 1000);
      reject(new BrokenRunError(`${command} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
