import { z } from 'zod';
import { upstreamUrl } from '../upstream/presets.ts';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "90s", "15m", "6h", "7d" (or a number of seconds) as milliseconds. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value * 1000;
  const match = DURATION.exec(value.trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration such as 30s, 15m, 6h or 7d` });
    return z.NEVER;
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
});

const BYTE_UNITS = { '': 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 } as const;

/** "64MiB", "4 GiB", "500MB" (or a number of bytes). */
export const byteSize = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = match?.[2]?.toLowerCase() as keyof typeof BYTE_UNITS | undefined;
  if (!match || unit === undefined || !(unit in BYTE_UNITS)) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size such as 512KiB, 64MiB or 10GiB` });
    return z.NEVER;
  }
  return Math.round(Number(match[1]) * BYTE_UNITS[unit]);
});

/** ECR's repository-prefix grammar for cache rules and templates. */
export const RULE_PREFIX = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export const UPSTREAM_KINDS = [
  'docker-hub',
  'github-container-registry',
  'quay',
  'gitlab-container-registry',
  'k8s',
  'ecr-public',
  'ecr',
  'azure-container-registry',
  'chainguard',
  'oci',
] as const;

/**
 * One entry of the `registries` section: the community ECR pull-through module's format (the key is the
 * prefix; `registry`, `username`, `accessToken`), plus Cistern's optional tuning.
 */
export const registryEntry = z
  .object({
    registry: z.string().min(1),
    username: z.string().min(1).optional(),
    accessToken: z.string().min(1).optional(),
    // `gitlab` is what people call it; ECR's API calls it gitlab-container-registry.
    kind: z
      .enum([...UPSTREAM_KINDS, 'gitlab'])
      .transform((kind) => (kind === 'gitlab' ? 'gitlab-container-registry' : kind))
      .optional(),
    /** AWS region an `ecr` upstream's API requests are signed for (default: the one in its host name). */
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as eu-west-1')
      .optional(),
    upstreamPrefix: z.string().optional(),
    freshness: duration.optional(),
    concurrency: z.number().int().min(1).max(1000).optional(),
    /** Disk budget for this rule's cached images; least recently pulled go first. */
    maxBytes: byteSize.optional(),
    /** Evict cached images nobody pulled for this many days. */
    evictAfterUnusedDays: z.number().int().min(1).optional(),
  })
  .strict()
  .refine((entry) => (entry.username === undefined) === (entry.accessToken === undefined), {
    message: 'give both username and accessToken, or neither',
  })
  .refine(
    (entry) => {
      try {
        upstreamUrl(entry.registry, entry.kind ?? 'oci');
        return true;
      } catch {
        return false;
      }
    },
    { message: 'registry is not a registry host or URL (registry-1.docker.io, ghcr.io, https://registry.example:5000)', path: ['registry'] },
  );

/** A cache rule's prefix: ROOT, or 2-30 characters of ECR's repository-prefix grammar. */
export function isRulePrefix(prefix: string): boolean {
  return prefix === 'ROOT' || (prefix.length >= 2 && prefix.length <= 30 && RULE_PREFIX.test(prefix));
}

export const PREFIX_MESSAGE = 'a prefix is 2-30 characters of lower-case segments ([a-z0-9._-]) joined by "/", or ROOT';

const prefixKey = z.string().refine(isRulePrefix, { message: PREFIX_MESSAGE });

const templateEntry = z
  .object({
    description: z.string().max(256).optional(),
    appliedFor: z.array(z.enum(['PULL_THROUGH_CACHE', 'REPLICATION', 'CREATE_ON_PUSH'])).default(['PULL_THROUGH_CACHE']),
    imageTagMutability: z.enum(['MUTABLE', 'IMMUTABLE']).default('MUTABLE'),
    /** ECR lifecycle policy, as JSON text or as YAML. */
    lifecyclePolicy: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    scanOnPull: z.boolean().default(false),
    resourceTags: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export const configSchema = z
  .object({
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(5000),
        shutdownGrace: duration.default(30_000),
        /** The address clients reach Cistern at (repository URIs, proxyEndpoint); defaults to the listener's. */
        publicUrl: z.string().url().optional(),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        /** Blobs, uploads and the secret key; with the default metadata driver, SQLite's database too. */
        directory: z.string().default('./data'),
        /** Where manifests, tags and settings live: SQLite in `directory`, or PostgreSQL shared by instances. */
        metadata: z
          .discriminatedUnion('driver', [
            z.object({ driver: z.literal('sqlite') }).strict(),
            z
              .object({
                driver: z.literal('postgres'),
                /** postgres://user:password@host:5432/database (use ${ENV} for the password). */
                url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
                schema: z
                  .string()
                  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lower-case identifier')
                  .default('public'),
                poolSize: z.number().int().min(1).max(200).default(10),
              })
              .strict(),
          ])
          .default({ driver: 'sqlite' }),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    limits: z
      .object({
        maxManifestSize: byteSize.default(4 * 1024 * 1024),
      })
      .strict()
      .default({ maxManifestSize: 4 * 1024 * 1024 }),
    uploads: z
      .object({
        expireAfter: duration.default(24 * 3_600_000),
        sweepInterval: duration.default(15 * 60_000),
      })
      .strict()
      .default({ expireAfter: 24 * 3_600_000, sweepInterval: 15 * 60_000 }),
    cache: z
      .object({
        manifestMemory: byteSize.default(64 * 1024 * 1024),
        pullTimeFlushInterval: duration.default(30_000),
      })
      .strict()
      .default({ manifestMemory: 64 * 1024 * 1024, pullTimeFlushInterval: 30_000 }),
    registries: z.record(prefixKey, registryEntry).default({}),
    templates: z.record(prefixKey, templateEntry).default({}),
    pullThrough: z
      .object({
        freshness: duration.default(6 * 3_600_000),
        /** Below this many remaining upstream pulls, revalidation stops spending them. */
        quotaReserve: z.number().int().min(0).default(10),
        concurrency: z.number().int().min(1).default(32),
        headersTimeout: duration.default(30_000),
        bodyTimeout: duration.default(60_000),
        retries: z.number().int().min(0).max(10).default(3),
        retryBaseDelay: duration.default(250),
        /** The rule that serves requests naming no prefix and no `ns` (Docker Engine's registry-mirrors). */
        defaultMirror: z.string().optional(),
        /**
         * Upstream hosts (host or host:port; `*.` wildcards) that rules created through the API may use.
         * Rules in this file are trusted as written.
         */
        allowedUpstreams: z
          .array(z.string())
          .default(['registry-1.docker.io', 'docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io', 'public.ecr.aws', 'registry.gitlab.com', 'cgr.dev', 'mcr.microsoft.com', '*.azurecr.io', '*.amazonaws.com']),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** Off only for a registry on a trusted network: then anyone may do anything on /v2/. */
        enabled: z.boolean().default(true),
        /**
         * What callers without credentials may do, by repository prefix ('*' for every repository):
         * pull (what is cached), import (fetch from upstream, creating repositories), push, delete.
         */
        anonymous: z
          .array(z.object({ prefix: z.string().min(1), actions: z.array(z.enum(['pull', 'import', 'push', 'delete'])).min(1) }).strict())
          .default([]),
        /** On a store with no users, create `admin` with full rights and print its access key once. */
        bootstrapAdmin: z.boolean().default(false),
        /** Lifetime of registry bearer tokens from /v2/token. */
        tokenLifetime: duration.default(300_000),
      })
      .strict()
      .prefault({}),
    storageBudget: z
      .object({
        /** Budget for the whole store; when exceeded, cached images (never pushed ones) are evicted, least recently pulled first. */
        maxBytes: byteSize.optional(),
        /** Images pulled within this window are never evicted. */
        protectPulledWithin: duration.default(3_600_000),
        /** How often budgets and evictAfterUnusedDays are enforced. */
        interval: duration.default(15 * 60_000),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        /** How often unreferenced blobs are collected. */
        interval: duration.default(6 * 3_600_000),
        /** Blobs and links younger than this are never collected: a push's blobs wait this long for their manifest. */
        grace: duration.default(3_600_000),
      })
      .strict()
      .prefault({}),
    lifecycle: z
      .object({
        /** How often every repository's lifecycle policy is applied. */
        interval: duration.default(3_600_000),
      })
      .strict()
      .prefault({}),
    aws: z
      .object({
        /** Region and account id in ARNs, and the region SigV4 signatures must name. */
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).default('us-east-1'),
        accountId: z.string().regex(/^\d{12}$/).default('000000000000'),
      })
      .strict()
      .default({ region: 'us-east-1', accountId: '000000000000' }),
    secrets: z
      .object({
        /** AES-256 key sealing upstream credentials; created (mode 0600) on first start. CISTERN_SECRET_KEY overrides. */
        keyFile: z.string().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
