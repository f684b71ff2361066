import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CisternProcess {
  child: ChildProcess;
  url: string;
  /** Resolves with the signal or exit code when the process ends. */
  exited: Promise<string | number | null>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Cistern as a separate process (for crash tests, which need a real kill -9), on an ephemeral port,
 * storing under `directory`. Extra environment such as CISTERN_FAILPOINTS passes through.
 */
export async function startCisternProcess(directory: string, env: Record<string, string> = {}): Promise<CisternProcess> {
  const configPath = join(directory, 'cistern.yaml');
  await writeFile(
    configPath,
    `http: { host: 127.0.0.1, port: 0, shutdownGrace: 5s }\nstorage: { directory: ${JSON.stringify(directory)} }\nlog: { level: info }\nauth: { enabled: false }\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts'), 'serve', '--config', configPath], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<string | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url) resolve(entry.url);
      } catch {
        // not a log line
      }
    });
    void exited.then((how) => reject(new Error(`cistern exited before listening (${String(how)})`)));
  });
  return {
    child,
    url,
    exited,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
