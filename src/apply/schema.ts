import { z } from 'zod';
import { RULE_PREFIX, UPSTREAM_KINDS, duration } from '../config/schema.ts';
import { upstreamUrl } from '../upstream/presets.ts';

/**
 * One entry of an apply file: the same shape as an entry of cistern.yaml's `registries` (the community ECR
 * pull-through module's seed format plus Cistern's optional tuning). src/config/schema.ts does not export its
 * `registryEntry`, so this is an equivalent built from the same pieces; it also checks that `registry` is a
 * host or URL, which the config file learns only when the server starts.
 */
export const applyEntry = z
  .object({
    registry: z.string().min(1),
    username: z.string().min(1).optional(),
    accessToken: z.string().min(1).optional(),
    kind: z.enum(UPSTREAM_KINDS).optional(),
    upstreamPrefix: z.string().optional(),
    freshness: duration.optional(),
    concurrency: z.number().int().min(1).max(1000).optional(),
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

/** The config file's rule-prefix grammar: ROOT, or 2-30 characters of ECR's repository-prefix grammar. */
export function isRulePrefix(prefix: string): boolean {
  return prefix === 'ROOT' || (prefix.length >= 2 && prefix.length <= 30 && RULE_PREFIX.test(prefix));
}

export const PREFIX_MESSAGE = 'a prefix is 2-30 characters of lower-case segments ([a-z0-9._-]) joined by "/", or ROOT';

export type ApplyEntryInput = z.input<typeof applyEntry>;
export type ApplyEntry = z.output<typeof applyEntry>;
