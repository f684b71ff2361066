import type { CreationTemplateMetadata, RepositorySettings } from '../storage/metadata-store.ts';
import { ROOT } from './rules.ts';

interface TemplateBody {
  appliedFor?: string[];
  imageTagMutability?: 'MUTABLE' | 'IMMUTABLE';
  lifecyclePolicy?: string;
  scanOnPull?: boolean;
  resourceTags?: { Key: string; Value: string }[];
}

/**
 * ECR's repository creation templates: when a pull creates a repository, the template with the longest
 * matching prefix (ROOT as the fallback) gives its settings. Applied only at creation.
 */
export class TemplateResolver {
  constructor(private readonly templates: CreationTemplateMetadata) {}

  async settingsFor(repository: string): Promise<RepositorySettings | undefined> {
    const candidates = (await this.templates.list()).filter((t) => {
      const body = t.body as TemplateBody;
      return (body.appliedFor ?? ['PULL_THROUGH_CACHE']).includes('PULL_THROUGH_CACHE');
    });
    const best =
      candidates.filter((t) => t.prefix !== ROOT && repository.startsWith(`${t.prefix}/`)).sort((a, b) => b.prefix.length - a.prefix.length)[0] ??
      candidates.find((t) => t.prefix === ROOT);
    if (!best) return undefined;
    const body = best.body as TemplateBody;
    return {
      template: best.prefix,
      ...(body.imageTagMutability && { imageTagMutability: body.imageTagMutability }),
      ...(body.lifecyclePolicy && { lifecyclePolicy: body.lifecyclePolicy }),
      ...(body.scanOnPull !== undefined && { scanOnPush: body.scanOnPull }),
      ...(body.resourceTags && { resourceTags: body.resourceTags }),
    };
  }
}
