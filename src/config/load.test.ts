import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfigFile, parseConfig } from './load.ts';

test('defaults fill an empty config', () => {
  const config = parseConfig({});
  assert.equal(config.http.port, 5000);
  assert.equal(config.storage.directory, './data');
  assert.equal(config.limits.maxManifestSize, 4 * 1024 * 1024);
  assert.equal(config.uploads.expireAfter, 24 * 3600 * 1000);
});

test('durations and sizes are parsed; nonsense is reported with its path', () => {
  const config = parseConfig({ uploads: { expireAfter: '90m' }, cache: { manifestMemory: '1.5MiB' } });
  assert.equal(config.uploads.expireAfter, 90 * 60 * 1000);
  assert.equal(config.cache.manifestMemory, 1.5 * 1024 * 1024);
  assert.throws(() => parseConfig({ uploads: { expireAfter: 'soon' } }), /uploads\.expireAfter/);
  assert.throws(() => parseConfig({ cache: { manifestMemory: '12 bananas' } }), /cache\.manifestMemory/);
  assert.throws(() => parseConfig({ http: { prot: 1 } }), /http/);
  assert.throws(() => parseConfig({ surprise: true }), ConfigError);
});

test('the sample config file is valid', async () => {
  const config = await loadConfigFile(new URL('../../cistern.yaml', import.meta.url).pathname);
  assert.equal(config.http.host, '127.0.0.1');
  assert.equal(config.http.port, 5000);
});

test('${VAR} comes from the environment; an unset variable is an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-config-'));
  try {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'storage:\n  directory: ${DATA_DIR}/x\n');
    const config = await loadConfigFile(path, { DATA_DIR: '/srv' });
    assert.equal(config.storage.directory, '/srv/x');
    await assert.rejects(loadConfigFile(path, {}), /DATA_DIR/);
    await writeFile(path, 'http: [unclosed\n');
    await assert.rejects(loadConfigFile(path, {}), /not valid YAML/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('registry entries: `gitlab` is ECR\'s gitlab-container-registry; an ecr region must be a region', () => {
  const config = parseConfig({
    registries: {
      gitlab: { registry: 'registry.gitlab.com', kind: 'gitlab' },
      ecr: { registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', kind: 'ecr', region: 'eu-west-1' },
    },
  });
  assert.equal(config.registries['gitlab']!.kind, 'gitlab-container-registry');
  assert.equal(config.registries['ecr']!.region, 'eu-west-1');
  assert.throws(() => parseConfig({ registries: { ecr: { registry: 'x.example', kind: 'ecr', region: 'Mars' } } }), /registries\.ecr\.region/);
  assert.throws(() => parseConfig({ registries: { other: { registry: 'x.example', kind: 'harbour' } } }), /registries\.other\.kind/);
});

test('config-check prints the config with defaults, and never the secrets that came from the environment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-config-'));
  try {
    const file = join(dir, 'cistern.yaml');
    await writeFile(
      file,
      [
        'storage:',
        '  metadata: { driver: postgres, url: "postgres://cistern:${PG_PASSWORD}@db.example:5432/cistern" }',
        'registries:',
        '  dockerhub: { registry: registry-1.docker.io, username: me, accessToken: "${HUB_TOKEN}" }',
        '  ghcr: { registry: ghcr.io }',
      ].join('\n'),
    );
    const env = { ...process.env, PG_PASSWORD: 'pg-secret-4711', HUB_TOKEN: 'dckr_pat_secret_0815' };
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'config-check', '--config', file], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    const shown = JSON.parse(run.stdout) as { registries: Record<string, { username?: string; accessToken?: string }>; storage: { metadata: { url: string } }; http: { port: number } };
    assert.equal(shown.http.port, 5000, 'defaults are filled in');
    assert.equal(shown.registries['dockerhub']!.username, 'me');
    assert.equal(shown.registries['dockerhub']!.accessToken, '(hidden)');
    assert.equal(shown.storage.metadata.url, 'postgres://cistern:(hidden)@db.example:5432/cistern');
    assert.ok(!run.stdout.includes('pg-secret-4711') && !run.stdout.includes('dckr_pat_secret_0815'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
