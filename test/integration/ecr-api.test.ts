import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ECRClient,
  CreatePullThroughCacheRuleCommand,
  DescribePullThroughCacheRulesCommand,
  UpdatePullThroughCacheRuleCommand,
  DeletePullThroughCacheRuleCommand,
  ValidatePullThroughCacheRuleCommand,
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  DeleteRepositoryCommand,
  ListImagesCommand,
  DescribeImagesCommand,
  BatchGetImageCommand,
  BatchDeleteImageCommand,
  PutImageCommand,
  BatchCheckLayerAvailabilityCommand,
  GetDownloadUrlForLayerCommand,
  GetAuthorizationTokenCommand,
  PutLifecyclePolicyCommand,
  GetLifecyclePolicyCommand,
  DeleteLifecyclePolicyCommand,
  PutImageTagMutabilityCommand,
  PutImageScanningConfigurationCommand,
  TagResourceCommand,
  UntagResourceCommand,
  ListTagsForResourceCommand,
  CreateRepositoryCreationTemplateCommand,
  DescribeRepositoryCreationTemplatesCommand,
  UpdateRepositoryCreationTemplateCommand,
  DeleteRepositoryCreationTemplateCommand,
} from '@aws-sdk/client-ecr';
import {
  SecretsManagerClient,
  CreateSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  UpdateSecretCommand,
  DeleteSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { startCistern, type TestCistern } from '../helpers/cistern.ts';
import { pull } from '../helpers/pull.ts';
import { pushImage, imageManifest, blob, pushBlob } from '../helpers/oci.ts';
import { buildImage } from '../fixtures/image-builder.ts';
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.ts';

const KEEP_3 = JSON.stringify({ rules: [{ rulePriority: 1, description: 'keep the 3 newest images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 }, action: { type: 'expire' } }] });

async function rejectsWith(promise: Promise<unknown>, name: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, name, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('ECR and Secrets Manager APIs through the AWS SDK', () => {
  let cistern: TestCistern;
  let upstream: FakeUpstream;
  let ecr: ECRClient;
  let secrets: SecretsManagerClient;
  let readOnly: ECRClient;
  let admin: { accessKeyId: string; secretAccessKey: string };

  const client = <T>(Client: new (config: object) => T, credentials: { accessKeyId: string; secretAccessKey: string }) =>
    new Client({ endpoint: cistern.url, region: 'us-east-1', credentials, maxAttempts: 1 });

  before(async () => {
    upstream = await startFakeUpstream({ users: { hubuser: 'first-token' }, anonymous: false });
    upstream.addImage('library/nginx', '1.27', buildImage({ seed: 'ecr-nginx', layers: [{ size: 2000, compress: false }] }));
    cistern = await startCistern({ pullThrough: { allowedUpstreams: [upstream.host, 'ghcr.io'], retries: 0 } });
    await cistern.app.identities.createUser('admin', [{ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecr:*', 'secretsmanager:*'], Resource: '*' }] }]);
    await cistern.app.identities.createUser('reader', [{ Statement: [{ Effect: 'Allow', Action: ['ecr:Describe*', 'ecr:List*', 'ecr:BatchGetImage'], Resource: '*' }] }]);
    admin = await cistern.app.identities.createKey('admin');
    ecr = client(ECRClient, admin);
    secrets = client(SecretsManagerClient, admin);
    readOnly = client(ECRClient, await cistern.app.identities.createKey('reader'));
  });
  after(async () => {
    ecr?.destroy();
    secrets?.destroy();
    readOnly?.destroy();
    await cistern.stop();
    await upstream.stop();
  });

  it('refuses unsigned, badly signed and unknown-key requests', async () => {
    await rejectsWith(client(ECRClient, { accessKeyId: admin.accessKeyId, secretAccessKey: 'wrong' }).send(new DescribeRepositoriesCommand({})), 'InvalidSignatureException');
    await rejectsWith(client(ECRClient, { accessKeyId: 'CKIAUNKNOWNUNKNOWN12', secretAccessKey: 'x' }).send(new DescribeRepositoriesCommand({})), 'UnrecognizedClientException');
    const res = await fetch(cistern.url, { method: 'POST', headers: { 'X-Amz-Target': 'AmazonEC2ContainerRegistry_V20150921.DescribeRepositories', 'Content-Type': 'application/x-amz-json-1.1' }, body: '{}' });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { __type: string; message: string };
    assert.match(body.__type, /^MissingAuthenticationToken/);
    assert.equal(res.headers.get('x-amzn-errortype'), body.__type);
    const huge = await fetch(cistern.url, { method: 'POST', headers: { 'X-Amz-Target': 'AmazonEC2ContainerRegistry_V20150921.DescribeRepositories' }, body: 'x'.repeat(2 << 20) });
    assert.equal(huge.status, 400);
    assert.equal(((await huge.json()) as { __type: string }).__type, 'ValidationException');
    const unknown = await fetch(cistern.url, { method: 'POST', headers: { 'X-Amz-Target': 'AmazonEC2ContainerRegistry_V20150921.Nope' }, body: '{}' });
    assert.equal(((await unknown.json()) as { __type: string }).__type, 'UnknownOperationException');
  });

  it('manages credentials as Secrets Manager secrets that are never returned', async () => {
    await rejectsWith(secrets.send(new CreateSecretCommand({ Name: 'other/name', SecretString: '{"username":"u","accessToken":"t"}' })), 'InvalidParameterException', /ecr-pullthroughcache\//);
    await rejectsWith(secrets.send(new CreateSecretCommand({ Name: 'ecr-pullthroughcache/bad', SecretString: '{"user":"u"}' })), 'InvalidParameterException');
    const created = await secrets.send(new CreateSecretCommand({ Name: 'ecr-pullthroughcache/hub', SecretString: JSON.stringify({ username: 'hubuser', accessToken: 'first-token' }), Description: 'hub' }));
    assert.match(created.ARN!, /^arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache\/hub-[A-Za-z0-9]{6}$/);
    await rejectsWith(secrets.send(new CreateSecretCommand({ Name: 'ecr-pullthroughcache/hub', SecretString: '{"username":"a","accessToken":"b"}' })), 'ResourceExistsException');
    const described = await secrets.send(new DescribeSecretCommand({ SecretId: created.ARN }));
    assert.equal(described.Name, 'ecr-pullthroughcache/hub');
    const listed = await secrets.send(new ListSecretsCommand({}));
    assert.deepEqual(listed.SecretList?.map((s) => s.Name), ['ecr-pullthroughcache/hub']);
    assert.ok(!JSON.stringify([described, listed]).includes('first-token'));
    await rejectsWith(secrets.send(new DescribeSecretCommand({ SecretId: 'ecr-pullthroughcache/none' })), 'ResourceNotFoundException');
  });

  it('deletes secrets after a recovery window, or at once when forced', async () => {
    const name = 'ecr-pullthroughcache/temporary';
    const value = JSON.stringify({ username: 'u', accessToken: 't' });
    await secrets.send(new CreateSecretCommand({ Name: name, SecretString: value }));
    const scheduled = await secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    const days = (scheduled.DeletionDate!.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7);
    assert.ok((await secrets.send(new DescribeSecretCommand({ SecretId: name }))).DeletedDate instanceof Date);
    assert.ok(!(await secrets.send(new ListSecretsCommand({}))).SecretList!.some((s) => s.Name === name));
    assert.ok((await secrets.send(new ListSecretsCommand({ IncludePlannedDeletion: true }))).SecretList!.some((s) => s.Name === name));
    await rejectsWith(secrets.send(new CreateSecretCommand({ Name: name, SecretString: value })), 'InvalidRequestException', /scheduled for deletion/);
    await rejectsWith(secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: value })), 'InvalidRequestException');
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'temp', upstreamRegistryUrl: 'ghcr.io', credentialArn: scheduled.ARN })), 'SecretNotFoundException');
    await rejectsWith(secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7, ForceDeleteWithoutRecovery: true })), 'InvalidParameterException');
    await secrets.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
    await rejectsWith(secrets.send(new DescribeSecretCommand({ SecretId: name })), 'ResourceNotFoundException');
  });

  it('creates, describes, pages, validates, updates and deletes pull-through cache rules', async () => {
    const hubArn = (await secrets.send(new DescribeSecretCommand({ SecretId: 'ecr-pullthroughcache/hub' }))).ARN!;
    const rule = await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: upstream.url, credentialArn: hubArn, upstreamRepositoryPrefix: 'library' }));
    assert.equal(rule.ecrRepositoryPrefix, 'hub');
    assert.equal(rule.credentialArn, hubArn);
    assert.ok(rule.createdAt instanceof Date);
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: upstream.url })), 'PullThroughCacheRuleAlreadyExistsException');
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'evil', upstreamRegistryUrl: 'http://169.254.169.254' })), 'UnsupportedUpstreamRegistryException');
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'Bad_Prefix', upstreamRegistryUrl: 'ghcr.io' })), 'InvalidParameterException');
    await rejectsWith(ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'nosecret', upstreamRegistryUrl: 'ghcr.io', credentialArn: hubArn.replace('hub', 'gone') })), 'SecretNotFoundException');
    for (const prefix of ['ghcr-a', 'ghcr-b']) await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: prefix, upstreamRegistryUrl: 'ghcr.io' }));

    const pages: string[][] = [];
    let nextToken: string | undefined;
    do {
      const page = await ecr.send(new DescribePullThroughCacheRulesCommand({ maxResults: 2, nextToken }));
      pages.push(page.pullThroughCacheRules!.map((r) => r.ecrRepositoryPrefix!));
      nextToken = page.nextToken;
    } while (nextToken);
    assert.deepEqual(pages, [['ghcr-a', 'ghcr-b'], ['hub']]);
    await rejectsWith(ecr.send(new DescribePullThroughCacheRulesCommand({ ecrRepositoryPrefixes: ['nope'] })), 'PullThroughCacheRuleNotFoundException');

    const valid = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub' }));
    assert.equal(valid.isValid, true);
    assert.ok((await pull(cistern.url, 'hub/nginx', '1.27')).digest);

    // Rotate in one place: the secret's new value is used at once.
    await secrets.send(new PutSecretValueCommand({ SecretId: hubArn, SecretString: JSON.stringify({ username: 'hubuser', accessToken: 'revoked' }) }));
    upstream.revokeTokens();
    const invalid = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub' }));
    assert.equal(invalid.isValid, false);
    assert.match(invalid.failure!, /refused our credentials/);
    assert.ok(!invalid.failure!.includes('revoked'));
    await secrets.send(new UpdateSecretCommand({ SecretId: hubArn, SecretString: JSON.stringify({ username: 'hubuser', accessToken: 'first-token' }) }));
    assert.equal((await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'hub' }))).isValid, true);

    await rejectsWith(secrets.send(new DeleteSecretCommand({ SecretId: hubArn, ForceDeleteWithoutRecovery: true })), 'InvalidRequestException', /hub/);
    const updated = await ecr.send(new UpdatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'ghcr-a', credentialArn: hubArn }));
    assert.equal(updated.credentialArn, hubArn);
    const deleted = await ecr.send(new DeletePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'ghcr-b' }));
    assert.equal(deleted.upstreamRegistryUrl, 'ghcr.io');
    await rejectsWith(ecr.send(new DeletePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'ghcr-b' })), 'PullThroughCacheRuleNotFoundException');
  });

  it('denies what a policy does not allow, naming the permission', async () => {
    await rejectsWith(readOnly.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'sneaky', upstreamRegistryUrl: 'ghcr.io' })), 'AccessDeniedException', /not authorized to perform: ecr:CreatePullThroughCacheRule/);
    upstream.reset();
    await rejectsWith(readOnly.send(new BatchGetImageCommand({ repositoryName: 'hub/uncached', imageIds: [{ imageTag: 'v1' }] })), 'AccessDeniedException', /ecr:BatchImportUpstreamImage/);
    assert.equal(upstream.requests.length, 0, 'a read-only identity spends no upstream quota');
    assert.ok((await readOnly.send(new DescribePullThroughCacheRulesCommand({}))).pullThroughCacheRules);
  });

  it('manages repositories, settings, tags and lifecycle policies', async () => {
    const created = await ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/app', tags: [{ Key: 'team', Value: 'web' }], imageScanningConfiguration: { scanOnPush: true } }));
    const arn = created.repository!.repositoryArn!;
    assert.equal(arn, 'arn:aws:ecr:us-east-1:000000000000:repository/team/app');
    assert.equal(created.repository!.repositoryUri, `${cistern.host}/team/app`);
    await rejectsWith(ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/app' })), 'RepositoryAlreadyExistsException');
    await rejectsWith(ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['team/none'] })), 'RepositoryNotFoundException');
    await ecr.send(new PutImageTagMutabilityCommand({ repositoryName: 'team/app', imageTagMutability: 'IMMUTABLE' }));
    await ecr.send(new PutImageScanningConfigurationCommand({ repositoryName: 'team/app', imageScanningConfiguration: { scanOnPush: false } }));
    const described = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ['team/app'] }));
    assert.equal(described.repositories![0]!.imageTagMutability, 'IMMUTABLE');
    await pushImage(cistern.url, 'team/app', 'fixed', 'immutable-1');
    await assert.rejects(pushImage(cistern.url, 'team/app', 'fixed', 'immutable-2'), /TAG_INVALID|cannot be overwritten/);
    await pushImage(cistern.url, 'team/app', 'fixed', 'immutable-1');
    assert.equal(described.repositories![0]!.imageScanningConfiguration!.scanOnPush, false);

    await ecr.send(new TagResourceCommand({ resourceArn: arn, tags: [{ Key: 'env', Value: 'prod' }] }));
    await ecr.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ['team'] }));
    assert.deepEqual((await ecr.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags, [{ Key: 'env', Value: 'prod' }]);

    await rejectsWith(ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'team/app' })), 'LifecyclePolicyNotFoundException');
    await rejectsWith(ecr.send(new PutLifecyclePolicyCommand({ repositoryName: 'team/app', lifecyclePolicyText: JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: 'tagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] }) })), 'InvalidParameterException', /tagPrefixList|tagPatternList/);
    await ecr.send(new PutLifecyclePolicyCommand({ repositoryName: 'team/app', lifecyclePolicyText: KEEP_3 }));
    assert.equal((await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'team/app' }))).lifecyclePolicyText, KEEP_3);
    await ecr.send(new DeleteLifecyclePolicyCommand({ repositoryName: 'team/app' }));
    await rejectsWith(ecr.send(new DeleteLifecyclePolicyCommand({ repositoryName: 'team/app' })), 'LifecyclePolicyNotFoundException');
    await rejectsWith(ecr.send(new PutLifecyclePolicyCommand({ repositoryName: 'team/app', lifecyclePolicyText: '{"rules":[]}' })), 'ValidationException', /length/);
  });

  it('lists, describes, gets, puts and deletes images; checks layers; deletes repositories', async () => {
    const v1 = await pushImage(cistern.url, 'shop/api', 'v1', 'shop-v1');
    await pushImage(cistern.url, 'shop/api', 'v2', 'shop-v2');
    const listed = await ecr.send(new ListImagesCommand({ repositoryName: 'shop/api' }));
    assert.deepEqual(listed.imageIds!.map((i) => i.imageTag).sort(), ['v1', 'v2']);
    const details = await ecr.send(new DescribeImagesCommand({ repositoryName: 'shop/api', imageIds: [{ imageTag: 'v1' }] }));
    const detail = details.imageDetails![0]!;
    assert.equal(detail.imageDigest, v1.digest);
    assert.equal(detail.imageSizeInBytes, v1.bytes.length + v1.config.size + v1.layers.reduce((n, l) => n + l.size, 0));
    assert.ok(detail.imagePushedAt instanceof Date);
    await rejectsWith(ecr.send(new DescribeImagesCommand({ repositoryName: 'shop/api', imageIds: [{ imageTag: 'v9' }] })), 'ImageNotFoundException');

    const got = await ecr.send(new BatchGetImageCommand({ repositoryName: 'shop/api', imageIds: [{ imageTag: 'v1' }, { imageTag: 'nope' }] }));
    assert.equal(got.images![0]!.imageManifest, v1.bytes.toString('utf8'));
    assert.equal(got.failures![0]!.imageId!.imageTag, 'nope');

    const config = blob('put-image/config');
    await pushBlob(cistern.url, 'shop/api', config);
    const manifest = imageManifest(config, []);
    const put = await ecr.send(new PutImageCommand({ repositoryName: 'shop/api', imageManifest: manifest.bytes.toString('utf8'), imageManifestMediaType: manifest.mediaType, imageTag: 'v3' }));
    assert.equal(put.image!.imageId!.imageDigest, manifest.digest);
    const layers = await ecr.send(new BatchCheckLayerAvailabilityCommand({ repositoryName: 'shop/api', layerDigests: [config.digest, manifest.digest, 'nonsense'] }));
    assert.deepEqual(layers.layers!.map((l) => l.layerAvailability), ['AVAILABLE', 'UNAVAILABLE']);
    assert.equal(layers.failures![0]!.failureCode, 'InvalidLayerDigest');
    const url = await ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName: 'shop/api', layerDigest: config.digest }));
    assert.equal(url.downloadUrl, `${cistern.url}/v2/shop/api/blobs/${config.digest}`);

    const removed = await ecr.send(new BatchDeleteImageCommand({ repositoryName: 'shop/api', imageIds: [{ imageTag: 'v2' }, { imageDigest: v1.digest }, { imageTag: 'ghost' }] }));
    assert.equal(removed.imageIds!.length, 2);
    assert.equal(removed.failures![0]!.failureCode, 'ImageNotFound');
    assert.deepEqual((await ecr.send(new ListImagesCommand({ repositoryName: 'shop/api' }))).imageIds!.map((i) => i.imageTag), ['v3']);

    await rejectsWith(ecr.send(new DeleteRepositoryCommand({ repositoryName: 'shop/api' })), 'RepositoryNotEmptyException');
    await ecr.send(new DeleteRepositoryCommand({ repositoryName: 'shop/api', force: true }));
    assert.equal((await fetch(`${cistern.url}/v2/shop/api/manifests/v3`)).status, 404);
  });

  it('pages every listing with nextToken and maxResults, without gaps or repeats', async () => {
    for (const n of [1, 2, 3, 4, 5]) await pushImage(cistern.url, `paged/r${n}`, 'v1', `paged-${n}`);
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await pushImage(cistern.url, 'paged/r1', tag, `paged-r1-${tag}`);
    const collect = async <T>(fetchPage: (nextToken?: string) => Promise<{ items: T[]; nextToken?: string }>) => {
      const all: T[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await fetchPage(token);
        all.push(...page.items);
        token = page.nextToken;
        pages++;
      } while (token);
      return { all, pages };
    };
    const repos = await collect(async (nextToken) => {
      const r = await ecr.send(new DescribeRepositoriesCommand({ maxResults: 2, nextToken }));
      return { items: r.repositories!.map((x) => x.repositoryName!), ...(r.nextToken && { nextToken: r.nextToken }) };
    });
    const paged = repos.all.filter((n) => n.startsWith('paged/'));
    assert.deepEqual(paged, ['paged/r1', 'paged/r2', 'paged/r3', 'paged/r4', 'paged/r5']);
    assert.equal(new Set(repos.all).size, repos.all.length);
    const images = await collect(async (nextToken) => {
      const r = await ecr.send(new ListImagesCommand({ repositoryName: 'paged/r1', maxResults: 4, nextToken }));
      return { items: r.imageIds!.map((x) => x.imageTag!), ...(r.nextToken && { nextToken: r.nextToken }) };
    });
    assert.deepEqual(images.all.sort(), ['a', 'b', 'c', 'd', 'e', 'v1']);
    assert.equal(images.pages, 2);
    const details = await collect(async (nextToken) => {
      const r = await ecr.send(new DescribeImagesCommand({ repositoryName: 'paged/r1', maxResults: 5, nextToken }));
      return { items: r.imageDetails!.map((x) => x.imageDigest!), ...(r.nextToken && { nextToken: r.nextToken }) };
    });
    assert.equal(new Set(details.all).size, 6);
    for (const n of [1, 2, 3]) await secrets.send(new CreateSecretCommand({ Name: `ecr-pullthroughcache/page${n}`, SecretString: JSON.stringify({ username: 'u', accessToken: 't' }) }));
    const listed = await collect(async (nextToken) => {
      const r = await secrets.send(new ListSecretsCommand({ MaxResults: 2, NextToken: nextToken }));
      return { items: r.SecretList!.map((x) => x.Name!), ...(r.NextToken && { nextToken: r.NextToken }) };
    });
    assert.deepEqual(listed.all.filter((n) => n.includes('/page')), ['ecr-pullthroughcache/page1', 'ecr-pullthroughcache/page2', 'ecr-pullthroughcache/page3']);
    await rejectsWith(ecr.send(new ListImagesCommand({ repositoryName: 'paged/r1', maxResults: 0 })), 'InvalidParameterException');
  });

  it('issues a 12-hour registry password with GetAuthorizationToken', async () => {
    const token = await ecr.send(new GetAuthorizationTokenCommand({}));
    const data = token.authorizationData![0]!;
    const [user, password] = Buffer.from(data.authorizationToken!, 'base64').toString('utf8').split(':');
    assert.equal(user, 'AWS');
    assert.ok(password && password.length >= 32);
    assert.equal(data.proxyEndpoint, cistern.url);
    const hours = (data.expiresAt!.getTime() - Date.now()) / 3_600_000;
    assert.ok(hours > 11.9 && hours <= 12);
  });

  it('manages repository creation templates', async () => {
    const created = await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'hub', appliedFor: ['PULL_THROUGH_CACHE'], lifecyclePolicy: KEEP_3, resourceTags: [{ Key: 'cache', Value: 'yes' }] }));
    assert.equal(created.repositoryCreationTemplate!.prefix, 'hub');
    await rejectsWith(ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix: 'hub', appliedFor: ['PULL_THROUGH_CACHE'] })), 'TemplateAlreadyExistsException');
    await ecr.send(new UpdateRepositoryCreationTemplateCommand({ prefix: 'hub', imageTagMutability: 'IMMUTABLE' }));
    const described = await ecr.send(new DescribeRepositoryCreationTemplatesCommand({ prefixes: ['hub'] }));
    assert.equal(described.repositoryCreationTemplates![0]!.imageTagMutability, 'IMMUTABLE');
    assert.equal(described.repositoryCreationTemplates![0]!.lifecyclePolicy, KEEP_3);
    await ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'hub' }));
    await rejectsWith(ecr.send(new DeleteRepositoryCreationTemplateCommand({ prefix: 'hub' })), 'TemplateNotFoundException');
  });
});
