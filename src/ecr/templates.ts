import { z } from 'zod';
import { RULE_PREFIX } from '../config/schema.ts';
import { ROOT } from '../cache/rules.ts';
import { parseLifecyclePolicy, LifecyclePolicyError } from '../policy/lifecycle-policy.ts';
import type { CreationTemplateRecord, MetadataStore } from '../storage/metadata-store.ts';
import type { AccessCheck } from './access.ts';
import { pagination, page, parseInput, tagList, type AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import type { Operation } from './json-protocol.ts';

export interface TemplateDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  access: AccessCheck;
  now: () => Date;
}

const prefix = z.string().refine((p) => p === ROOT || (p.length >= 2 && p.length <= 256 && RULE_PREFIX.test(p)), 'must be ROOT or a repository name prefix');
const fields = {
  description: z.string().max(256).optional(),
  encryptionConfiguration: z.object({ encryptionType: z.enum(['AES256', 'KMS', 'KMS_DSSE']), kmsKey: z.string().optional() }).strict().optional(),
  resourceTags: tagList.optional(),
  imageTagMutability: z.enum(['MUTABLE', 'IMMUTABLE']).optional(),
  repositoryPolicy: z.string().max(10240).optional(),
  lifecyclePolicy: z.string().max(30720).optional(),
  appliedFor: z.array(z.enum(['REPLICATION', 'PULL_THROUGH_CACHE', 'CREATE_ON_PUSH'])).min(1).optional(),
  customRoleArn: z.string().max(2048).optional(),
};

/** ECR's repository creation templates, applied to repositories that pulls (and pushes) create. */
export function templateOperations(deps: TemplateDeps): Record<string, Operation> {
  const { aws, metadata } = deps;

  const describe = (t: CreationTemplateRecord) => ({
    prefix: t.prefix,
    // Cistern's own bookkeeping (who applied it, scan-on-pull) is not part of ECR's shape.
    ...Object.fromEntries(Object.entries(t.body).filter(([key]) => key !== 'appliedBy' && key !== 'scanOnPull')),
    encryptionConfiguration: { encryptionType: 'AES256' },
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  });

  const find = async (p: string) => {
    const template = (await metadata.templates.list()).find((t) => t.prefix === p);
    if (!template) throw new AwsError('TemplateNotFoundException', `The specified repository creation template with prefix '${p}' does not exist in the registry with id '${aws.accountId}'`);
    return template;
  };

  const validated = (input: { lifecyclePolicy?: string | undefined }) => {
    if (input.lifecyclePolicy !== undefined) {
      try {
        parseLifecyclePolicy(input.lifecyclePolicy);
      } catch (err) {
        if (err instanceof LifecyclePolicyError) throw new AwsError(err.type, err.message);
        throw err;
      }
    }
  };

  const body = (input: Record<string, unknown>) => {
    const { prefix: _p, encryptionConfiguration: _e, ...rest } = input;
    return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  };

  return {
    async CreateRepositoryCreationTemplate(raw, { principal }) {
      const input = parseInput(z.object({ prefix, ...fields, appliedFor: fields.appliedFor.unwrap() }).strict(), raw);
      await deps.access(principal, 'ecr:CreateRepositoryCreationTemplate', '*');
      validated(input);
      if ((await metadata.templates.list()).some((t) => t.prefix === input.prefix)) {
        throw new AwsError('TemplateAlreadyExistsException', `The repository creation template with prefix '${input.prefix}' already exists`);
      }
      await metadata.templates.put({ prefix: input.prefix, body: { imageTagMutability: 'MUTABLE', resourceTags: [], ...body(input) }, source: 'api' }, deps.now());
      return { registryId: aws.accountId, repositoryCreationTemplate: describe(await find(input.prefix)) };
    },

    async DescribeRepositoryCreationTemplates(raw, { principal }) {
      const input = parseInput(z.object({ prefixes: z.array(prefix).max(100).optional(), ...pagination }).strict(), raw);
      await deps.access(principal, 'ecr:DescribeRepositoryCreationTemplates', '*');
      let templates = await metadata.templates.list();
      if (input.prefixes?.length) {
        for (const p of input.prefixes) await find(p);
        templates = templates.filter((t) => input.prefixes!.includes(t.prefix));
      }
      const { items, nextToken } = page(templates, (t) => t.prefix, input);
      return { registryId: aws.accountId, repositoryCreationTemplates: items.map(describe), ...(nextToken && { nextToken }) };
    },

    async UpdateRepositoryCreationTemplate(raw, { principal }) {
      const input = parseInput(z.object({ prefix, ...fields }).strict(), raw);
      await deps.access(principal, 'ecr:UpdateRepositoryCreationTemplate', '*');
      validated(input);
      const template = await find(input.prefix);
      await metadata.templates.put({ prefix: input.prefix, body: { ...template.body, ...body(input) }, source: 'api' }, deps.now());
      return { registryId: aws.accountId, repositoryCreationTemplate: describe(await find(input.prefix)) };
    },

    async DeleteRepositoryCreationTemplate(raw, { principal }) {
      const input = parseInput(z.object({ prefix }).strict(), raw);
      await deps.access(principal, 'ecr:DeleteRepositoryCreationTemplate', '*');
      const template = await find(input.prefix);
      await metadata.templates.delete(input.prefix);
      return { registryId: aws.accountId, repositoryCreationTemplate: describe(template) };
    },
  };
}
