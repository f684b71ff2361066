import { z } from 'zod';
import { RegistryError } from './errors.ts';
import { digestOf, isDigest, type Digest } from './digest.ts';
import { MediaType, isForeignLayer, isIndexMediaType } from './media-types.ts';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** What the registry needs to know about a manifest, derived once when it is pushed. */
export interface ParsedManifest {
  digest: Digest;
  mediaType: string;
  size: number;
  /** Blobs this manifest needs the repository to hold (config and distributable layers). */
  blobs: Descriptor[];
  /** Child manifests of an index. */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const descriptor = z.object({
  mediaType: z.string().min(1).max(255),
  digest: z.string().refine(isDigest, 'invalid digest').transform((value) => value as Digest),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  artifactType: z.string().max(255).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  urls: z.array(z.string()).optional(),
  platform: z
    .object({ os: z.string(), architecture: z.string(), variant: z.string().optional() })
    .passthrough()
    .optional(),
}).passthrough();

const imageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
  subject: descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).passthrough();

const imageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptor),
  subject: descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).passthrough();

/**
 * Parses and validates a manifest exactly as pushed. The bytes are never re-serialised: the digest is
 * of the body the client sent.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason: 'body is not valid JSON' });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason: 'body is not a JSON object' });
  }
  const declared = (json as { mediaType?: unknown }).mediaType;
  const header = normaliseContentType(contentType);
  if (declared !== undefined && typeof declared !== 'string') {
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason: 'mediaType must be a string' });
  }
  if (declared && header && declared !== header) {
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', {
      reason: `Content-Type ${header} does not match the manifest's mediaType ${declared}`,
    });
  }
  const mediaType = declared || header || guessMediaType(json);
  if (mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed) {
    throw new RegistryError('MANIFEST_INVALID', 'Docker schema 1 manifests are not supported', { mediaType });
  }
  const base = { digest: digestOf(body), mediaType, size: body.length };
  if (isIndexMediaType(mediaType)) {
    const index = validate(imageIndex, json);
    return {
      ...base,
      blobs: [],
      manifests: index.manifests,
      ...(index.subject && { subject: index.subject }),
      ...(index.artifactType && { artifactType: index.artifactType }),
      ...(index.annotations && { annotations: index.annotations }),
    };
  }
  if (mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest) {
    const manifest = validate(imageManifest, json);
    const blobs = [manifest.config, ...manifest.layers].filter((d) => !isForeignLayer(d.mediaType));
    // OCI 1.1: an artifact's type is artifactType, else its config's media type.
    const artifactType =
      manifest.artifactType ?? (mediaType === MediaType.OciManifest ? manifest.config.mediaType : undefined);
    return {
      ...base,
      blobs,
      manifests: [],
      ...(manifest.subject && { subject: manifest.subject }),
      ...(artifactType && { artifactType }),
      ...(manifest.annotations && { annotations: manifest.annotations }),
    };
  }
  throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', { reason: `unsupported media type ${mediaType}` });
}

function normaliseContentType(contentType: string | undefined): string | undefined {
  const value = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  // Generic types say nothing about which manifest this is.
  if (!value || value === 'application/json' || value === 'application/octet-stream') return undefined;
  return value;
}

function guessMediaType(json: object): string {
  if ('manifests' in json) return MediaType.OciIndex;
  if ('config' in json) return MediaType.OciManifest;
  throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', {
    reason: 'no mediaType given and the body is neither an image manifest nor an index',
  });
}

function validate<T>(schema: z.ZodType<T>, json: unknown): T {
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new RegistryError('MANIFEST_INVALID', 'manifest invalid', {
      reason: issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid manifest',
    });
  }
  return result.data;
}
