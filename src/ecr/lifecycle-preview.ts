import { z } from 'zod';
import type { LifecycleRunner, ExpiredImage } from '../policy/lifecycle-runner.ts';
import { LifecyclePolicyError } from '../policy/lifecycle-policy.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { AccessCheck } from './access.ts';
import { pagination, page, parseInput, registryId, repositoryArn, repositoryName, type AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import type { Operation } from './json-protocol.ts';
import { notFound } from './repositories.ts';

export interface LifecyclePreviewDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  runner: LifecycleRunner;
  access: AccessCheck;
}

interface Preview {
  policyText: string;
  results: ExpiredImage[];
}

/** ECR's lifecycle policy preview: the same evaluator the runner uses, with nothing expired. */
export function lifecyclePreviewOperations(deps: LifecyclePreviewDeps): Record<string, Operation> {
  const { aws, metadata } = deps;
  // Previews are answered at once, so they are kept only until the next one for that repository.
  const previews = new Map<string, Preview>();

  return {
    async StartLifecyclePolicyPreview(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, lifecyclePolicyText: z.string().optional() }).strict(), raw);
      await deps.access(principal, 'ecr:StartLifecyclePolicyPreview', repositoryArn(aws, input.repositoryName));
      const repo = await metadata.repositories.get(input.repositoryName);
      if (!repo) throw notFound(aws, input.repositoryName);
      const policyText = input.lifecyclePolicyText ?? repo.settings?.lifecyclePolicy;
      if (!policyText) {
        throw new AwsError('LifecyclePolicyNotFoundException', `Lifecycle policy does not exist for the repository with name '${repo.name}' in the registry with id '${aws.accountId}'`);
      }
      let results: ExpiredImage[];
      try {
        results = await deps.runner.preview(repo.name, policyText);
      } catch (err) {
        if (err instanceof LifecyclePolicyError) throw new AwsError(err.type, err.message);
        throw err;
      }
      previews.set(repo.name, { policyText, results });
      return { registryId: aws.accountId, repositoryName: repo.name, lifecyclePolicyText: policyText, status: 'IN_PROGRESS' };
    },

    async GetLifecyclePolicyPreview(raw, { principal }) {
      const input = parseInput(
        z
          .object({
            registryId,
            repositoryName,
            imageIds: z.array(z.object({ imageDigest: z.string().optional(), imageTag: z.string().optional() }).strict()).optional(),
            filter: z.object({ tagStatus: z.enum(['TAGGED', 'UNTAGGED', 'ANY']).optional() }).strict().optional(),
            ...pagination,
          })
          .strict(),
        raw,
      );
      await deps.access(principal, 'ecr:GetLifecyclePolicyPreview', repositoryArn(aws, input.repositoryName));
      const preview = previews.get(input.repositoryName);
      if (!preview) {
        throw new AwsError('LifecyclePolicyPreviewNotFoundException', `There is no dry run for the repository with name '${input.repositoryName}' in the registry with id '${aws.accountId}'`);
      }
      let results = preview.results;
      const status = input.filter?.tagStatus;
      if (status && status !== 'ANY') results = results.filter((r) => (status === 'TAGGED') === r.tags.length > 0);
      if (input.imageIds) results = results.filter((r) => input.imageIds!.some((id) => id.imageDigest === r.digest || (id.imageTag !== undefined && r.tags.includes(id.imageTag))));
      const { items, nextToken } = page(results, (r) => r.digest, input);
      return {
        registryId: aws.accountId,
        repositoryName: input.repositoryName,
        lifecyclePolicyText: preview.policyText,
        status: 'COMPLETE',
        previewResults: items.map((r) => ({
          ...(r.tags.length && { imageTags: r.tags }),
          imageDigest: r.digest,
          imagePushedAt: r.pushedAt,
          action: { type: 'EXPIRE' },
          appliedRulePriority: r.appliedRulePriority,
        })),
        summary: { expiringImageTotalCount: results.length },
        ...(nextToken && { nextToken }),
      };
    },
  };
}
