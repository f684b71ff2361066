import { execFile } from 'node:child_process';

export const SKOPEO = process.env.SKOPEO_BIN ?? '/usr/bin/skopeo';

/** Runs skopeo; resolves to stdout, or rejects with the command line and stderr. */
export function skopeo(...args: string[]): Promise<string> {
  // --insecure-policy: do not depend on /etc/containers/policy.json being present/permissive.
  const argv = ['--insecure-policy', ...args];
  return new Promise((resolve, reject) => {
    execFile(SKOPEO, argv, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`skopeo ${argv.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
