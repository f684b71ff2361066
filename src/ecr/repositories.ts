import { z } from 'zod';
import type { IdentityService } from '../auth/identities.ts';
import type { LocalRegistry } from '../registry/local-registry.ts';
import type { MetadataStore, RepositoryRecord, RepositorySettings } from '../storage/metadata-store.ts';
import { parseLifecyclePolicy, LifecyclePolicyError } from '../policy/lifecycle-policy.ts';
import type { AccessCheck } from './access.ts';
import { pagination, page, parseInput, registryId, repositoryArn, repositoryName, tagList, type AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import type { Operation } from './json-protocol.ts';

export interface RepositoryDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  local: LocalRegistry;
  identities: IdentityService;
  access: AccessCheck;
  /** The registry address clients push and pull through, e.g. http://127.0.0.1:5000. */
  publicUrl: () => string;
  now: () => Date;
}

/** Repositories and their settings: ECR's repository, tagging, lifecycle-policy and login operations. */
export function repositoryOperations(deps: RepositoryDeps): Record<string, Operation> {
  const { aws, metadata } = deps;
  const host = () => new URL(deps.publicUrl()).host;

  const describe = (repo: RepositoryRecord) => ({
    repositoryArn: repositoryArn(aws, repo.name),
    registryId: aws.accountId,
    repositoryName: repo.name,
    repositoryUri: `${host()}/${repo.name}`,
    createdAt: repo.createdAt,
    imageTagMutability: repo.settings?.imageTagMutability ?? 'MUTABLE',
    imageScanningConfiguration: { scanOnPush: repo.settings?.scanOnPush ?? false },
    encryptionConfiguration: { encryptionType: 'AES256' },
  });

  const existing = async (name: string) => {
    const repo = await metadata.repositories.get(name);
    if (!repo) throw notFound(aws, name);
    return repo;
  };

  const byArn = async (arn: string) => {
    const prefix = repositoryArn(aws, '');
    if (!arn.startsWith(prefix)) throw new AwsError('InvalidParameterException', `Invalid parameter at 'resourceArn': not a repository ARN of this registry`);
    return existing(arn.slice(prefix.length));
  };

  const update = async (name: string, change: (settings: RepositorySettings) => RepositorySettings) => {
    const repo = await existing(name);
    const settings = change(repo.settings ?? {});
    await metadata.repositories.updateSettings(name, settings);
    return { ...repo, settings };
  };

  return {
    async CreateRepository(raw, { principal }) {
      const input = parseInput(
        z
          .object({
            registryId,
            repositoryName,
            tags: tagList.optional(),
            imageTagMutability: z.enum(['MUTABLE', 'IMMUTABLE']).optional(),
            imageScanningConfiguration: z.object({ scanOnPush: z.boolean().optional() }).strict().optional(),
            encryptionConfiguration: z.object({ encryptionType: z.enum(['AES256', 'KMS', 'KMS_DSSE']), kmsKey: z.string().optional() }).strict().optional(),
          })
          .strict(),
        raw,
      );
      await deps.access(principal, 'ecr:CreateRepository', repositoryArn(aws, input.repositoryName));
      const settings: RepositorySettings = {
        imageTagMutability: input.imageTagMutability ?? 'MUTABLE',
        scanOnPush: input.imageScanningConfiguration?.scanOnPush ?? false,
        ...(input.tags && { resourceTags: input.tags }),
      };
      if (!(await metadata.repositories.create(input.repositoryName, { settings }, deps.now()))) {
        throw new AwsError('RepositoryAlreadyExistsException', `The repository with name '${input.repositoryName}' already exists in the registry with id '${aws.accountId}'`);
      }
      return { repository: describe(await existing(input.repositoryName)) };
    },

    async DescribeRepositories(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryNames: z.array(repositoryName).min(1).max(100).optional(), ...pagination }).strict(), raw);
      let repos: RepositoryRecord[];
      if (input.repositoryNames) {
        repos = [];
        for (const name of input.repositoryNames) {
          await deps.access(principal, 'ecr:DescribeRepositories', repositoryArn(aws, name));
          repos.push(await existing(name));
        }
      } else {
        await deps.access(principal, 'ecr:DescribeRepositories', repositoryArn(aws, '*'));
        const names = await metadata.repositories.list({ limit: 100_000 });
        repos = (await Promise.all(names.map((n) => metadata.repositories.get(n)))).filter((r): r is RepositoryRecord => r !== undefined);
      }
      const { items, nextToken } = page(repos, (r) => r.name, input);
      return { repositories: items.map(describe), ...(nextToken && { nextToken }) };
    },

    async DeleteRepository(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, force: z.boolean().optional() }).strict(), raw);
      await deps.access(principal, 'ecr:DeleteRepository', repositoryArn(aws, input.repositoryName));
      const repo = await existing(input.repositoryName);
      if (!input.force && (await metadata.manifests.list(input.repositoryName)).length > 0) {
        throw new AwsError('RepositoryNotEmptyException', `The repository with name '${input.repositoryName}' in registry with id '${aws.accountId}' cannot be deleted because it still contains images`);
      }
      await deps.local.deleteRepository(input.repositoryName);
      return { repository: describe(repo) };
    },

    async PutImageTagMutability(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, imageTagMutability: z.enum(['MUTABLE', 'IMMUTABLE']) }).strict(), raw);
      await deps.access(principal, 'ecr:PutImageTagMutability', repositoryArn(aws, input.repositoryName));
      await update(input.repositoryName, (s) => ({ ...s, imageTagMutability: input.imageTagMutability }));
      return { registryId: aws.accountId, repositoryName: input.repositoryName, imageTagMutability: input.imageTagMutability };
    },

    async PutImageScanningConfiguration(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, imageScanningConfiguration: z.object({ scanOnPush: z.boolean() }).strict() }).strict(), raw);
      await deps.access(principal, 'ecr:PutImageScanningConfiguration', repositoryArn(aws, input.repositoryName));
      await update(input.repositoryName, (s) => ({ ...s, scanOnPush: input.imageScanningConfiguration.scanOnPush }));
      return { registryId: aws.accountId, repositoryName: input.repositoryName, imageScanningConfiguration: input.imageScanningConfiguration };
    },

    async ListTagsForResource(raw, { principal }) {
      const input = parseInput(z.object({ resourceArn: z.string().min(1) }).strict(), raw);
      await deps.access(principal, 'ecr:ListTagsForResource', input.resourceArn);
      const repo = await byArn(input.resourceArn);
      return { tags: repo.settings?.resourceTags ?? [] };
    },

    async TagResource(raw, { principal }) {
      const input = parseInput(z.object({ resourceArn: z.string().min(1), tags: tagList }).strict(), raw);
      await deps.access(principal, 'ecr:TagResource', input.resourceArn);
      const repo = await byArn(input.resourceArn);
      const tags = new Map((repo.settings?.resourceTags ?? []).map((t) => [t.Key, t.Value]));
      for (const tag of input.tags) tags.set(tag.Key, tag.Value);
      if (tags.size > 50) throw new AwsError('TooManyTagsException', 'A repository can have at most 50 tags');
      await update(repo.name, (s) => ({ ...s, resourceTags: [...tags].map(([Key, Value]) => ({ Key, Value })) }));
      return {};
    },

    async UntagResource(raw, { principal }) {
      const input = parseInput(z.object({ resourceArn: z.string().min(1), tagKeys: z.array(z.string().min(1).max(128)).max(50) }).strict(), raw);
      await deps.access(principal, 'ecr:UntagResource', input.resourceArn);
      const repo = await byArn(input.resourceArn);
      await update(repo.name, (s) => ({ ...s, resourceTags: (s.resourceTags ?? []).filter((t) => !input.tagKeys.includes(t.Key)) }));
      return {};
    },

    async PutLifecyclePolicy(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, lifecyclePolicyText: z.string() }).strict(), raw);
      await deps.access(principal, 'ecr:PutLifecyclePolicy', repositoryArn(aws, input.repositoryName));
      await existing(input.repositoryName);
      try {
        parseLifecyclePolicy(input.lifecyclePolicyText);
      } catch (err) {
        if (err instanceof LifecyclePolicyError) throw new AwsError(err.type, err.message);
        throw err;
      }
      await update(input.repositoryName, (s) => ({ ...s, lifecyclePolicy: input.lifecyclePolicyText }));
      return { registryId: aws.accountId, repositoryName: input.repositoryName, lifecyclePolicyText: input.lifecyclePolicyText };
    },

    async GetLifecyclePolicy(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName }).strict(), raw);
      await deps.access(principal, 'ecr:GetLifecyclePolicy', repositoryArn(aws, input.repositoryName));
      const repo = await existing(input.repositoryName);
      if (!repo.settings?.lifecyclePolicy) throw policyNotFound(aws, input.repositoryName);
      return {
        registryId: aws.accountId,
        repositoryName: repo.name,
        lifecyclePolicyText: repo.settings.lifecyclePolicy,
        ...(repo.settings.lifecycleEvaluatedAt && { lastEvaluatedAt: new Date(repo.settings.lifecycleEvaluatedAt) }),
      };
    },

    async DeleteLifecyclePolicy(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName }).strict(), raw);
      await deps.access(principal, 'ecr:DeleteLifecyclePolicy', repositoryArn(aws, input.repositoryName));
      const repo = await existing(input.repositoryName);
      const text = repo.settings?.lifecyclePolicy;
      if (!text) throw policyNotFound(aws, input.repositoryName);
      await update(repo.name, ({ lifecyclePolicy: _dropped, ...s }) => s);
      return { registryId: aws.accountId, repositoryName: repo.name, lifecyclePolicyText: text };
    },

    async GetAuthorizationToken(raw, { principal }) {
      parseInput(z.object({ registryIds: z.array(z.string()).optional() }).strict(), raw);
      await deps.access(principal, 'ecr:GetAuthorizationToken', '*');
      const { token, expiresAt } = await deps.identities.issueLoginToken(principal.name);
      return {
        authorizationData: [{ authorizationToken: Buffer.from(`AWS:${token}`).toString('base64'), expiresAt, proxyEndpoint: deps.publicUrl() }],
      };
    },
  };
}

export function notFound(aws: AwsIdentity, name: string): AwsError {
  return new AwsError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${aws.accountId}'`);
}

function policyNotFound(aws: AwsIdentity, name: string): AwsError {
  return new AwsError('LifecyclePolicyNotFoundException', `Lifecycle policy does not exist for the repository with name '${name}' in the registry with id '${aws.accountId}'`);
}
