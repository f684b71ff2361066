/**
 * The AWS CLI (Debian's awscli, /usr/bin/aws) against Cistern's ECR endpoint: create a pull-through cache
 * rule, then pull an image through it with skopeo.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDistribution, type RunningRegistry } from '../fixtures/distribution.ts';
import { buildImage, pushImage, readOciLayout } from '../fixtures/image-builder.ts';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { skopeo } from '../helpers/skopeo.ts';

const AWS = process.env.AWS_CLI ?? '/usr/bin/aws';
const run = promisify(execFile);

describe('aws ecr against Cistern', { timeout: 300_000 }, () => {
  let upstream: RunningRegistry;
  let cistern: TestCistern;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const image = buildImage({ seed: 'aws-cli', layers: [{ size: 100_000 }] });

  const aws = async (...args: string[]) => {
    const { stdout } = await run(AWS, [...args, '--endpoint-url', cistern.url, '--region', 'us-east-1', '--output', 'json'], { env });
    return stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : {};
  };

  async function loginWithStdin(authfile: string, password: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const child = execFile('/usr/bin/skopeo', ['login', '--tls-verify=false', '--authfile', authfile, '-u', 'AWS', '--password-stdin', cistern.host], (err, _out, stderr) =>
        err ? reject(new Error(`skopeo login failed: ${stderr}`)) : resolve(),
      );
      child.stdin!.end(password);
    });
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'cistern-aws-'));
    upstream = await startDistribution();
    await pushImage(upstream.url, 'tools/cli', '1.0', image);
    cistern = await startCistern({ pullThrough: { allowedUpstreams: [upstream.host] }, auth: { enabled: true } });
    await cistern.app.identities.createUser('ops', [{ Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: '*' }] }]);
    const key = await cistern.app.identities.createKey('ops');
    env = {
      PATH: process.env.PATH,
      HOME: work,
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      AWS_CONFIG_FILE: join(work, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'none'),
      AWS_PAGER: '',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  });
  after(async () => {
    await cistern?.stop();
    await upstream?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('creates a pull-through cache rule, lists it, and pulls through it', async () => {
    const created = await aws('ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'mirror', '--upstream-registry-url', upstream.url);
    assert.equal(created.ecrRepositoryPrefix, 'mirror');
    const described = (await aws('ecr', 'describe-pull-through-cache-rules')) as { pullThroughCacheRules: { ecrRepositoryPrefix: string }[] };
    assert.deepEqual(described.pullThroughCacheRules.map((r) => r.ecrRepositoryPrefix), ['mirror']);

    // aws ecr get-login-password | skopeo login --password-stdin, then pull with the stored login.
    const authfile = join(work, 'auth.json');
    await assert.rejects(skopeo('inspect', '--tls-verify=false', '--authfile', authfile, `docker://${cistern.host}/mirror/tools/cli:1.0`), /401|unauthorized|authentication required/i);
    const { stdout: password } = await run(AWS, ['ecr', 'get-login-password', '--endpoint-url', cistern.url, '--region', 'us-east-1'], { env });
    await loginWithStdin(authfile, password.trim());
    const layout = join(work, 'pulled');
    await skopeo('copy', '--src-tls-verify=false', '--src-authfile', authfile, `docker://${cistern.host}/mirror/tools/cli:1.0`, `oci:${layout}:x`);
    assert.equal(readOciLayout(layout).resolve('x').digest, image.manifestDigest);

    const images = (await aws('ecr', 'describe-images', '--repository-name', 'mirror/tools/cli')) as { imageDetails: { imageDigest: string; imageTags: string[] }[] };
    assert.equal(images.imageDetails[0]!.imageDigest, image.manifestDigest);
    assert.deepEqual(images.imageDetails[0]!.imageTags, ['1.0']);
  });

  it('gives a login password and reports errors by their ECR names', async () => {
    const { stdout } = await run(AWS, ['ecr', 'get-login-password', '--endpoint-url', cistern.url, '--region', 'us-east-1'], { env });
    assert.ok(stdout.trim().length >= 32);
    await assert.rejects(aws('ecr', 'describe-repositories', '--repository-names', 'nothing/here'), /RepositoryNotFoundException/);
    await assert.rejects(aws('ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'mirror', '--upstream-registry-url', upstream.url), /PullThroughCacheRuleAlreadyExistsException/);
  });
});
