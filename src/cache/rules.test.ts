import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuleSet, type CacheRule } from './rules.ts';

const rule = (prefix: string, kind: string, url: string, upstreamPrefix?: string): CacheRule => ({
  prefix,
  kind,
  upstreamUrl: url,
  freshnessMs: 1,
  concurrency: 1,
  ...(upstreamPrefix && { upstreamPrefix }),
});

const rules = new RuleSet([
  rule('dockerhub', 'docker-hub', 'https://registry-1.docker.io'),
  rule('ghcr', 'github-container-registry', 'https://ghcr.io'),
  rule('ghcr/acme', 'github-container-registry', 'https://ghcr.io', 'acme-corp'),
  rule('mirror', 'oci', 'http://127.0.0.1:5001', 'team'),
]);

test('Docker Hub official images live under library/, nested names as given', () => {
  assert.equal(rules.match('dockerhub/nginx')?.upstreamRepository, 'library/nginx');
  assert.equal(rules.match('dockerhub/library/nginx')?.upstreamRepository, 'library/nginx');
  assert.equal(rules.match('dockerhub/bitnami/redis')?.upstreamRepository, 'bitnami/redis');
});

test('the longest prefix at a segment boundary wins; upstreamPrefix maps names', () => {
  assert.equal(rules.match('ghcr/acme/tool')?.rule.prefix, 'ghcr/acme');
  assert.equal(rules.match('ghcr/acme/tool')?.upstreamRepository, 'acme-corp/tool');
  assert.equal(rules.match('ghcr/other/tool')?.upstreamRepository, 'other/tool');
  assert.equal(rules.match('mirror/app')?.upstreamRepository, 'team/app');
  assert.equal(rules.match('dockerhubx/nginx'), undefined, 'not a segment boundary');
  assert.equal(rules.match('dockerhub'), undefined, 'the prefix alone is not a repository');
  assert.equal(rules.match('local/app'), undefined);
});

test('ROOT catches every name no other rule matches', () => {
  const withRoot = new RuleSet([rule('ROOT', 'oci', 'https://mirror.example'), rule('hub', 'docker-hub', 'https://registry-1.docker.io')]);
  assert.equal(withRoot.match('anything/at/all')?.rule.prefix, 'ROOT');
  assert.equal(withRoot.match('anything/at/all')?.upstreamRepository, 'anything/at/all');
  assert.equal(withRoot.match('hub/nginx')?.upstreamRepository, 'library/nginx');
});

test('mirror hosts: every name of a known registry, and the upstream URL host', () => {
  for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) assert.equal(rules.forHost(host)?.prefix, 'dockerhub');
  assert.equal(rules.forHost('ghcr.io')?.prefix, 'ghcr');
  assert.equal(rules.forHost('127.0.0.1:5001')?.prefix, 'mirror');
  assert.equal(rules.forHost('quay.io'), undefined);
});
