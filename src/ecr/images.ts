import { z } from 'zod';
import { RegistryError } from '../domain/errors.ts';
import { isDigest, parseDigest, type Digest } from '../domain/digest.ts';
import { parseRepositoryName, parseTag, type Reference } from '../domain/reference.ts';
import type { Registry } from '../registry/registry.ts';
import type { ManifestSummary, MetadataStore } from '../storage/metadata-store.ts';
import type { AccessCheck } from './access.ts';
import { pagination, page, parseInput, registryId, repositoryArn, repositoryName, type AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import type { Operation } from './json-protocol.ts';
import { notFound } from './repositories.ts';

export interface ImageDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  registry: Registry;
  access: AccessCheck;
  publicUrl: () => string;
}

const imageId = z.object({ imageDigest: z.string().optional(), imageTag: z.string().min(1).max(300).optional() }).strict();
type ImageId = z.infer<typeof imageId>;
const filter = z.object({ tagStatus: z.enum(['TAGGED', 'UNTAGGED', 'ANY']).optional() }).strict().optional();

/** Images in ECR's terms, over the same registry the OCI API serves. */
export function imageOperations(deps: ImageDeps): Record<string, Operation> {
  const { aws, metadata, registry } = deps;

  const manifestsOf = async (name: string): Promise<ManifestSummary[]> => {
    if (!(await metadata.repositories.get(name))) throw notFound(aws, name);
    return metadata.manifests.list(name);
  };

  const byTagStatus = (images: ManifestSummary[], status: 'TAGGED' | 'UNTAGGED' | 'ANY' | undefined) =>
    images.filter((m) => status === undefined || status === 'ANY' || (status === 'TAGGED') === m.tags.length > 0);

  /** Resolves an imageId against a repository's images; undefined when it names none. */
  const resolve = (images: ManifestSummary[], id: ImageId): ManifestSummary | 'mismatch' | undefined => {
    const byDigest = id.imageDigest ? images.find((m) => m.digest === id.imageDigest) : undefined;
    const byTag = id.imageTag ? images.find((m) => m.tags.includes(id.imageTag!)) : undefined;
    if (id.imageDigest && id.imageTag) return byDigest && byTag && byDigest.digest === byTag.digest ? byDigest : byDigest && byTag ? 'mismatch' : undefined;
    return byDigest ?? byTag;
  };

  const failure = (id: ImageId, code: string, reason: string) => ({ imageId: id, failureCode: code, failureReason: reason });

  const checkIds = (ids: ImageId[]) => {
    for (const id of ids) {
      if (!id.imageDigest && !id.imageTag) throw new AwsError('InvalidParameterException', 'Invalid parameter at imageIds: an image id needs an imageDigest or an imageTag');
    }
  };

  return {
    async ListImages(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, filter, ...pagination }).strict(), raw);
      await deps.access(principal, 'ecr:ListImages', repositoryArn(aws, input.repositoryName));
      const ids = byTagStatus(await manifestsOf(input.repositoryName), input.filter?.tagStatus).flatMap((m) =>
        m.tags.length ? m.tags.map((tag) => ({ imageDigest: m.digest, imageTag: tag })) : [{ imageDigest: m.digest }],
      );
      const { items, nextToken } = page(ids, (i) => `${i.imageDigest}\n${'imageTag' in i ? i.imageTag : ''}`, input);
      return { imageIds: items, ...(nextToken && { nextToken }) };
    },

    async DescribeImages(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, imageIds: z.array(imageId).min(1).max(100).optional(), filter, ...pagination }).strict(), raw);
      await deps.access(principal, 'ecr:DescribeImages', repositoryArn(aws, input.repositoryName));
      const images = await manifestsOf(input.repositoryName);
      let selected: ManifestSummary[];
      if (input.imageIds) {
        checkIds(input.imageIds);
        selected = [];
        for (const id of input.imageIds) {
          const found = resolve(images, id);
          if (!found || found === 'mismatch') {
            throw new AwsError('ImageNotFoundException', `The image with imageId ${JSON.stringify(id)} does not exist within the repository with name '${input.repositoryName}' in the registry with id '${aws.accountId}'`);
          }
          selected.push(found);
        }
      } else {
        selected = byTagStatus(images, input.filter?.tagStatus);
      }
      const { items, nextToken } = page(selected, (m) => m.digest, input);
      return {
        imageDetails: items.map((m) => ({
          registryId: aws.accountId,
          repositoryName: input.repositoryName,
          imageDigest: m.digest,
          ...(m.tags.length && { imageTags: m.tags }),
          imageSizeInBytes: m.size + m.blobBytes,
          imagePushedAt: m.pushedAt,
          imageManifestMediaType: m.mediaType,
          ...(m.lastPulledAt && { lastRecordedPullTime: m.lastPulledAt }),
        })),
        ...(nextToken && { nextToken }),
      };
    },

    async BatchGetImage(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, imageIds: z.array(imageId).min(1).max(100), acceptedMediaTypes: z.array(z.string()).min(1).max(100).optional() }).strict(), raw);
      await deps.access(principal, 'ecr:BatchGetImage', repositoryArn(aws, input.repositoryName));
      checkIds(input.imageIds);
      const name = parseRepositoryName(input.repositoryName);
      const images = [];
      const failures = [];
      for (const id of input.imageIds) {
        const reference: Reference = id.imageDigest && isDigest(id.imageDigest) ? { kind: 'digest', digest: id.imageDigest as Digest } : { kind: 'tag', tag: parseTag(id.imageTag ?? '') };
        try {
          // As on the registry API: fetching from upstream needs the import permission (and creating the repository).
          const manifest = await registry.getManifest(name, reference, {
            guard: async (creating) => {
              await deps.access(principal, 'ecr:BatchImportUpstreamImage', repositoryArn(aws, name));
              if (creating) await deps.access(principal, 'ecr:CreateRepository', repositoryArn(aws, name));
            },
          });
          if (id.imageDigest && id.imageTag && manifest.digest !== id.imageDigest) {
            failures.push(failure(id, 'ImageTagDoesNotMatchDigest', 'Tag does not match digest'));
            continue;
          }
          if (input.acceptedMediaTypes && !input.acceptedMediaTypes.includes(manifest.mediaType)) {
            failures.push(failure(id, 'UnsupportedImageType', `Image is ${manifest.mediaType}`));
            continue;
          }
          images.push({
            registryId: aws.accountId,
            repositoryName: name,
            imageId: { imageDigest: manifest.digest, ...(id.imageTag && { imageTag: id.imageTag }) },
            imageManifest: manifest.content.toString('utf8'),
            imageManifestMediaType: manifest.mediaType,
          });
        } catch (err) {
          if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') {
            failures.push(failure(id, id.imageTag ? 'ImageTagDoesNotMatchDigest' : 'ImageNotFound', 'Requested image not found'));
            continue;
          }
          throw err;
        }
      }
      return { images, failures };
    },

    async BatchDeleteImage(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, imageIds: z.array(imageId).min(1).max(100) }).strict(), raw);
      await deps.access(principal, 'ecr:BatchDeleteImage', repositoryArn(aws, input.repositoryName));
      checkIds(input.imageIds);
      const name = parseRepositoryName(input.repositoryName);
      const images = await manifestsOf(name);
      const deleted = [];
      const failures = [];
      for (const id of input.imageIds) {
        const found = resolve(images, id);
        if (!found) {
          failures.push(failure(id, 'ImageNotFound', 'Requested image not found'));
          continue;
        }
        if (found === 'mismatch') {
          failures.push(failure(id, 'ImageTagDoesNotMatchDigest', 'Tag does not match digest'));
          continue;
        }
        // ECR: naming a tag removes the tag; the image goes when its last tag does. A digest removes it all.
        if (id.imageTag && !id.imageDigest && found.tags.length > 1) {
          await registry.deleteManifest(name, { kind: 'tag', tag: parseTag(id.imageTag) });
          found.tags = found.tags.filter((t) => t !== id.imageTag);
        } else {
          await registry.deleteManifest(name, { kind: 'digest', digest: found.digest });
        }
        deleted.push({ imageDigest: found.digest, ...(id.imageTag && { imageTag: id.imageTag }) });
      }
      return { imageIds: deleted, failures };
    },

    async PutImage(raw, { principal }) {
      const input = parseInput(
        z
          .object({
            registryId,
            repositoryName,
            imageManifest: z.string().min(1).max(4 * 1024 * 1024),
            imageManifestMediaType: z.string().optional(),
            imageTag: z.string().min(1).max(300).optional(),
            imageDigest: z.string().optional(),
          })
          .strict(),
        raw,
      );
      await deps.access(principal, 'ecr:PutImage', repositoryArn(aws, input.repositoryName));
      const name = parseRepositoryName(input.repositoryName);
      const repo = await metadata.repositories.get(name);
      if (!repo) throw notFound(aws, name);
      const body = Buffer.from(input.imageManifest, 'utf8');
      if (input.imageTag) {
        const current = await metadata.tags.resolve(name, input.imageTag);
        if (current && repo.settings?.imageTagMutability === 'IMMUTABLE') {
          throw new AwsError('ImageTagAlreadyExistsException', `The image tag '${input.imageTag}' already exists in the '${name}' repository and cannot be overwritten because the repository is immutable.`);
        }
      }
      const reference: Reference = input.imageTag ? { kind: 'tag', tag: parseTag(input.imageTag) } : { kind: 'digest', digest: parseDigest(input.imageDigest ?? '') };
      try {
        const { digest } = await registry.putManifest(name, reference, body, input.imageManifestMediaType);
        if (input.imageDigest && input.imageDigest !== digest) throw new AwsError('ImageDigestDoesNotMatchException', 'The manifest does not match the given imageDigest');
        return {
          image: {
            registryId: aws.accountId,
            repositoryName: name,
            imageId: { imageDigest: digest, ...(input.imageTag && { imageTag: input.imageTag }) },
            imageManifest: input.imageManifest,
            ...(input.imageManifestMediaType && { imageManifestMediaType: input.imageManifestMediaType }),
          },
        };
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'MANIFEST_BLOB_UNKNOWN') throw new AwsError('LayersNotFoundException', err.message);
        throw err;
      }
    },

    async BatchCheckLayerAvailability(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, layerDigests: z.array(z.string()).min(1).max(100) }).strict(), raw);
      await deps.access(principal, 'ecr:BatchCheckLayerAvailability', repositoryArn(aws, input.repositoryName));
      const name = parseRepositoryName(input.repositoryName);
      if (!(await metadata.repositories.get(name))) throw notFound(aws, name);
      const layers = [];
      const failures = [];
      for (const layerDigest of input.layerDigests) {
        if (!isDigest(layerDigest)) {
          failures.push({ layerDigest, failureCode: 'InvalidLayerDigest', failureReason: 'Invalid layer digest' });
          continue;
        }
        const size = await metadata.blobLinks.get(name, layerDigest as Digest);
        layers.push(size === undefined ? { layerDigest, layerAvailability: 'UNAVAILABLE' } : { layerDigest, layerAvailability: 'AVAILABLE', layerSize: size, mediaType: 'application/octet-stream' });
      }
      return { layers, failures };
    },

    async GetDownloadUrlForLayer(raw, { principal }) {
      const input = parseInput(z.object({ registryId, repositoryName, layerDigest: z.string() }).strict(), raw);
      await deps.access(principal, 'ecr:GetDownloadUrlForLayer', repositoryArn(aws, input.repositoryName));
      const name = parseRepositoryName(input.repositoryName);
      const digest = parseDigest(input.layerDigest);
      try {
        await registry.statBlob(name, digest);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'BLOB_UNKNOWN') {
          throw new AwsError('LayersNotFoundException', `The layer '${digest}' does not exist in the repository '${name}'`);
        }
        throw err;
      }
      return { downloadUrl: `${deps.publicUrl()}/v2/${name}/blobs/${digest}`, layerDigest: digest };
    },
  };
}
