import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Repository root (the directory holding package.json). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_DIR = join(REPO_ROOT, 'bench');
/** Results land here (gitignored). */
export const RESULTS_DIR = join(REPO_ROOT, '.bench');
