import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenge } from './challenge.ts';
import { ecrEndpoint } from './ecr-credential.ts';
import { kindOfHost, upstreamUrl } from './presets.ts';
import { parseRateLimit, QuotaTracker } from './quota.ts';

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
  });
  assert.deepEqual(parseChallenge(['Basic realm="Registry Realm"']), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.equal(parseChallenge('Negotiate abc'), undefined);
  assert.equal(parseChallenge(undefined), undefined);
});

test('rate-limit headers and the quota tracker', () => {
  assert.deepEqual(parseRateLimit('100;w=21600', '76;w=21600', 5), { limit: 100, remaining: 76, windowSeconds: 21600, at: 5 });
  assert.equal(parseRateLimit(undefined, '1', 0), undefined);
  let now = 0;
  const quota = new QuotaTracker(() => now);
  quota.record('hub:anonymous', parseRateLimit('10;w=60', '3;w=60', now)!);
  assert.ok(quota.isLow('hub:anonymous', 5));
  assert.ok(!quota.isLow('hub:anonymous', 3));
  now = 61_000;
  assert.ok(!quota.isLow('hub:anonymous', 5), 'a reading older than its window says nothing');
  quota.block('hub:anonymous', 30);
  assert.equal(quota.blocked('hub:anonymous'), 30);
  now += 30_000;
  assert.equal(quota.blocked('hub:anonymous'), undefined);
});

test('upstream kinds and URLs', () => {
  assert.equal(kindOfHost('ghcr.io'), 'github-container-registry');
  assert.equal(kindOfHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), 'ecr');
  assert.equal(kindOfHost('example.azurecr.io'), 'azure-container-registry');
  assert.equal(kindOfHost('registry.example.com'), 'oci');
  assert.equal(upstreamUrl('docker.io', 'docker-hub'), 'https://registry-1.docker.io');
  assert.equal(upstreamUrl('ghcr.io', 'github-container-registry'), 'https://ghcr.io');
  assert.equal(upstreamUrl('http://127.0.0.1:5001/', 'oci'), 'http://127.0.0.1:5001');
});

test('an ECR upstream signs for the region in its host, and its API lives at api.ecr', () => {
  const aws = ecrEndpoint('https://123456789012.dkr.ecr.eu-west-1.amazonaws.com', undefined);
  assert.equal(aws.apiUrl.href, 'https://api.ecr.eu-west-1.amazonaws.com/');
  assert.equal(aws.region, 'eu-west-1');
  const china = ecrEndpoint('https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', undefined);
  assert.equal(china.apiUrl.href, 'https://api.ecr.cn-north-1.amazonaws.com.cn/');
  // An ECR-compatible registry elsewhere (another Cistern) answers the API on its own origin.
  const other = ecrEndpoint('http://127.0.0.1:5001', 'eu-central-1');
  assert.equal(other.apiUrl.href, 'http://127.0.0.1:5001/');
  assert.equal(other.region, 'eu-central-1');
  assert.equal(ecrEndpoint('https://registry.example', undefined).region, 'us-east-1');
});
