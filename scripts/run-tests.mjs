#!/usr/bin/env node
// Node 20's test runner does not expand globs, so find the test files here and hand them over.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'node_modules' ? [] : find(path);
    return entry.endsWith('.test.ts') ? [path] : [];
  });
}

const dirs = process.argv.slice(2);
const files = dirs.flatMap(find).sort();
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit' },
);

// With CISTERN_TEST_METADATA_URL (test/helpers/cistern.ts), test Cisterns keep their metadata in schemas
// named cistern_t_*; those of directories a test chose outlive the test: drop them all now.
const metadataUrl = process.env.CISTERN_TEST_METADATA_URL;
if (metadataUrl) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: metadataUrl });
  await client.connect();
  const { rows } = await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cistern\\_t\\_%'");
  for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  await client.end();
}
process.exit(result.status ?? 1);
