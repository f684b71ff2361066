import { PRESETS } from '../upstream/presets.ts';
import type { CacheRuleRecord } from '../storage/metadata-store.ts';

/** A cache rule as the pull-through registry uses it. */
export interface CacheRule {
  prefix: string;
  upstreamUrl: string;
  kind: string;
  /** ECR's upstreamRepositoryPrefix: `prefix/x` is `upstreamPrefix/x` upstream. */
  upstreamPrefix?: string;
  credentialSecret?: string;
  freshnessMs: number;
  concurrency: number;
  maxBytes?: number;
  evictAfterUnusedDays?: number;
  /** The AWS region an `ecr` upstream signs for, when its host does not say. */
  region?: string;
}

export interface RuleMatch {
  rule: CacheRule;
  /** The repository's name upstream. */
  upstreamRepository: string;
}

export const ROOT = 'ROOT';

export function ruleFromRecord(record: CacheRuleRecord, defaults: { freshnessMs: number; concurrency: number }): CacheRule {
  const settings = record.settings as { freshnessMs?: number; concurrency?: number; maxBytes?: number; evictAfterUnusedDays?: number; region?: string };
  return {
    prefix: record.prefix,
    upstreamUrl: record.upstreamUrl,
    kind: record.upstreamKind,
    ...(record.upstreamPrefix && record.upstreamPrefix !== ROOT && { upstreamPrefix: record.upstreamPrefix }),
    ...(record.credentialSecret && { credentialSecret: record.credentialSecret }),
    freshnessMs: settings.freshnessMs ?? defaults.freshnessMs,
    concurrency: settings.concurrency ?? defaults.concurrency,
    ...(settings.maxBytes !== undefined && { maxBytes: settings.maxBytes }),
    ...(settings.evictAfterUnusedDays !== undefined && { evictAfterUnusedDays: settings.evictAfterUnusedDays }),
    ...(settings.region !== undefined && { region: settings.region }),
  };
}

/** The rules in force, matched by the longest prefix at a path-segment boundary; ROOT matches the rest. */
export class RuleSet {
  private readonly byLength: CacheRule[];
  private readonly byHost = new Map<string, CacheRule>();

  constructor(readonly rules: CacheRule[]) {
    this.byLength = rules.filter((r) => r.prefix !== ROOT).sort((a, b) => b.prefix.length - a.prefix.length);
    for (const rule of rules) {
      // A rule of a known kind answers for all of that registry's names (docker.io, index.docker.io, ...).
      for (const alias of [new URL(rule.upstreamUrl).host, ...(PRESETS[rule.kind]?.aliases ?? [])]) {
        if (!this.byHost.has(alias)) this.byHost.set(alias, rule);
      }
    }
  }

  match(repository: string): RuleMatch | undefined {
    for (const rule of this.byLength) {
      if (repository.startsWith(`${rule.prefix}/`)) return { rule, upstreamRepository: upstreamName(rule, repository.slice(rule.prefix.length + 1)) };
    }
    const root = this.rules.find((r) => r.prefix === ROOT);
    return root && { rule: root, upstreamRepository: upstreamName(root, repository) };
  }

  get(prefix: string): CacheRule | undefined {
    return this.rules.find((r) => r.prefix === prefix);
  }

  /** The rule for a registry host named by containerd's `ns` parameter. */
  forHost(host: string): CacheRule | undefined {
    return this.byHost.get(host.toLowerCase());
  }
}

function upstreamName(rule: CacheRule, rest: string): string {
  if (rule.upstreamPrefix) return `${rule.upstreamPrefix}/${rest}`;
  const official = PRESETS[rule.kind]?.officialNamespace;
  return official && !rest.includes('/') ? `${official}/${rest}` : rest;
}
