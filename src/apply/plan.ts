import { SECRET_PREFIX, type Credential } from '../secrets/credentials.ts';
import type { CacheRuleRecord, CreationTemplateRecord } from '../storage/metadata-store.ts';
import { kindOfHost, upstreamUrl } from '../upstream/presets.ts';
import type { DesiredEntry, DesiredState } from './file.ts';

/**
 * What `cistern apply` owns. The store's `source` is only 'config' (re-seeded, and pruned, from cistern.yaml on
 * every start) or 'api', so apply writes its rules with source 'api' and marks them as its own:
 * - a rule: `settings.appliedBy = 'apply'` (settings survive UpdatePullThroughCacheRule);
 * - a creation template: `body.appliedBy = 'apply'` (the body survives UpdateRepositoryCreationTemplate);
 * - a secret: its description, `credential for cache rule <prefix> (from cistern apply)`.
 * Apply changes and deletes only what carries its mark; anything else at a name it wants is a conflict.
 */
export const APPLIED_BY = 'apply';

/** The community module's template: expire all but the 3 newest images (same body format as seed.ts writes). */
export const KEEP_NEWEST_3_POLICY = JSON.stringify({
  rules: [
    {
      rulePriority: 1,
      description: 'Keep only the 3 most recent images',
      selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 },
      action: { type: 'expire' },
    },
  ],
});

export function secretName(prefix: string): string {
  return `${SECRET_PREFIX}${prefix}`;
}

export function secretDescription(prefix: string): string {
  return `credential for cache rule ${prefix} (from cistern apply)`;
}

export type RuleSpec = Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'>;
export interface SecretSpec {
  name: string;
  credential: Credential;
  description: string;
}
export interface TemplateSpec {
  prefix: string;
  body: Record<string, unknown>;
}

/** A secret under `ecr-pullthroughcache/` as apply sees it: values only of those it owns. */
export interface CurrentSecret {
  name: string;
  description?: string;
  /** The decrypted value, for secrets apply owns. */
  credential?: Credential;
  /** Set when an owned secret's value could not be decrypted. */
  unreadable?: boolean;
}

export interface CurrentState {
  rules: CacheRuleRecord[];
  templates: CreationTemplateRecord[];
  secrets: CurrentSecret[];
  /** Prefixes cistern.yaml's `registries` and `templates` re-seed on every start: apply must not claim them. */
  config?: { registries: string[]; templates: string[] };
}

export type ActionKind = 'create' | 'update' | 'delete' | 'unchanged' | 'conflict';

interface ActionBase {
  action: ActionKind;
  /** A rule or template prefix, or a secret name. */
  name: string;
  /** Why, for people: never a secret value. */
  detail: string;
}
export type PlanAction =
  | (ActionBase & { resource: 'rule'; spec?: RuleSpec })
  | (ActionBase & { resource: 'secret'; spec?: SecretSpec })
  | (ActionBase & { resource: 'template'; spec?: TemplateSpec });

export interface Plan {
  /** In display order: per entry of the file (rule, secret, template), then deletions. */
  actions: PlanAction[];
}

export function ownsRule(rule: CacheRuleRecord): boolean {
  return rule.settings.appliedBy === APPLIED_BY;
}

export function ownsTemplate(template: CreationTemplateRecord): boolean {
  return template.body.appliedBy === APPLIED_BY;
}

export function ownsSecret(secret: { name: string; description?: string | undefined }): boolean {
  return secret.name.startsWith(SECRET_PREFIX) && secret.description === secretDescription(secret.name.slice(SECRET_PREFIX.length));
}

/** The rule an entry asks for, built as seed.ts builds config rules. */
export function ruleSpec(entry: DesiredEntry): RuleSpec {
  const host = /^https?:\/\//.test(entry.registry) ? new URL(entry.registry).host : entry.registry.split('/')[0]!;
  const kind = entry.kind ?? kindOfHost(host);
  return {
    prefix: entry.prefix,
    upstreamUrl: upstreamUrl(entry.registry, kind),
    upstreamKind: kind,
    ...(entry.upstreamPrefix && { upstreamPrefix: entry.upstreamPrefix }),
    ...(entry.credential && { credentialSecret: secretName(entry.prefix) }),
    settings: {
      ...(entry.freshnessMs !== undefined && { freshnessMs: entry.freshnessMs }),
      ...(entry.concurrency !== undefined && { concurrency: entry.concurrency }),
      appliedBy: APPLIED_BY,
    },
    source: 'api',
  };
}

export function templateSpec(prefix: string): TemplateSpec {
  return {
    prefix,
    body: {
      description: `Created by cistern apply for pull-through cache rule ${prefix}`,
      appliedFor: ['PULL_THROUGH_CACHE'],
      imageTagMutability: 'MUTABLE',
      lifecyclePolicy: KEEP_NEWEST_3_POLICY,
      scanOnPull: false,
      resourceTags: [],
      appliedBy: APPLIED_BY,
    },
  };
}

/** JSON with object keys sorted: equality that ignores key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

function shownUpstream(url: string): string {
  return url.replace(/^https:\/\//, '');
}

/** The fields of a rule that differ, by name (values only where they are not secret). */
function ruleChanges(current: CacheRuleRecord, wanted: RuleSpec): string[] {
  const changes: string[] = [];
  if (current.upstreamUrl !== wanted.upstreamUrl) changes.push(`upstream ${shownUpstream(current.upstreamUrl)} -> ${shownUpstream(wanted.upstreamUrl)}`);
  if (current.upstreamKind !== wanted.upstreamKind) changes.push(`kind ${current.upstreamKind} -> ${wanted.upstreamKind}`);
  if ((current.upstreamPrefix ?? '') !== (wanted.upstreamPrefix ?? '')) changes.push('upstreamPrefix');
  if ((current.credentialSecret ?? '') !== (wanted.credentialSecret ?? '')) {
    changes.push(wanted.credentialSecret ? (current.credentialSecret ? `credential ${wanted.credentialSecret}` : 'credential added') : 'credential removed');
  }
  const keys = new Set([...Object.keys(current.settings), ...Object.keys(wanted.settings)]);
  for (const key of [...keys].sort()) {
    if (canonical(current.settings[key]) !== canonical(wanted.settings[key])) changes.push(key === 'freshnessMs' ? 'freshness' : key);
  }
  return changes;
}

function ruleOwner(rule: CacheRuleRecord): string {
  return rule.source === 'config' ? 'seeded from the config file' : 'created through the API';
}

function templateOwner(template: CreationTemplateRecord): string {
  return template.source === 'config' ? "from the config file's templates" : 'created through the API';
}

function secretOwner(secret: CurrentSecret): string {
  return secret.description?.endsWith('(from config)') ? 'seeded from the config file' : 'created through Secrets Manager';
}

const NOT_OURS = 'apply changes only what it created';

function sameCredential(a: Credential, b: Credential): boolean {
  return a.username === b.username && a.accessToken === b.accessToken;
}

function isEntryList(desired: DesiredState | readonly DesiredEntry[]): desired is readonly DesiredEntry[] {
  return Array.isArray(desired);
}

/**
 * What it takes to make the store match the file. Pure: `current` holds everything it needs, including the
 * decrypted values of the secrets apply owns. Nothing apply did not create is changed or deleted; where the
 * file wants a name something else holds, the plan has a conflict and must not be executed.
 */
export function planApply(desired: DesiredState | readonly DesiredEntry[], current: CurrentState): Plan {
  const entries: readonly DesiredEntry[] = isEntryList(desired) ? desired : desired.entries;
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.prefix)) throw new Error(`the file lists ${entry.prefix} twice`);
    seen.add(entry.prefix);
  }
  const configRegistries = new Set(current.config?.registries ?? []);
  const configTemplates = new Set(current.config?.templates ?? []);
  const rules = new Map(current.rules.map((r) => [r.prefix, r]));
  const templates = new Map(current.templates.map((t) => [t.prefix, t]));
  const secrets = new Map(current.secrets.map((s) => [s.name, s]));
  const actions: PlanAction[] = [];
  /** The credential secret of each rule as it will be after the plan. */
  const ruleSecretAfter = new Map(current.rules.map((r) => [r.prefix, r.credentialSecret]));
  const wantedSecrets = new Set<string>();

  for (const entry of entries) {
    const { prefix } = entry;
    // The rule.
    const rule = ruleSpec(entry);
    const existing = rules.get(prefix);
    if (configRegistries.has(prefix)) {
      actions.push({ resource: 'rule', action: 'conflict', name: prefix, detail: `listed in the config file's registries, which the server re-seeds on every start; ${NOT_OURS}` });
    } else if (!existing) {
      actions.push({ resource: 'rule', action: 'create', name: prefix, detail: shownUpstream(rule.upstreamUrl), spec: rule });
      ruleSecretAfter.set(prefix, rule.credentialSecret);
    } else if (!ownsRule(existing)) {
      actions.push({ resource: 'rule', action: 'conflict', name: prefix, detail: `exists, ${ruleOwner(existing)}; ${NOT_OURS}` });
    } else {
      const changes = ruleChanges(existing, rule);
      actions.push(
        changes.length === 0
          ? { resource: 'rule', action: 'unchanged', name: prefix, detail: 'unchanged' }
          : { resource: 'rule', action: 'update', name: prefix, detail: changes.join(', '), spec: rule },
      );
      ruleSecretAfter.set(prefix, rule.credentialSecret);
    }

    // The credential secret.
    const name = secretName(prefix);
    const secret = secrets.get(name);
    if (entry.credential) {
      wantedSecrets.add(name);
      const spec: SecretSpec = { name, credential: entry.credential, description: secretDescription(prefix) };
      if (!secret) actions.push({ resource: 'secret', action: 'create', name, detail: `credential of rule ${prefix}`, spec });
      else if (!ownsSecret(secret)) actions.push({ resource: 'secret', action: 'conflict', name, detail: `exists, ${secretOwner(secret)}; ${NOT_OURS}` });
      else if (secret.unreadable || !secret.credential) actions.push({ resource: 'secret', action: 'update', name, detail: 'the stored value cannot be decrypted; replacing it', spec });
      else if (sameCredential(secret.credential, entry.credential)) actions.push({ resource: 'secret', action: 'unchanged', name, detail: 'unchanged' });
      else actions.push({ resource: 'secret', action: 'update', name, detail: 'value changed', spec });
    }

    // The creation template.
    const template = templateSpec(prefix);
    const existingTemplate = templates.get(prefix);
    if (configTemplates.has(prefix)) {
      actions.push({ resource: 'template', action: 'conflict', name: prefix, detail: `listed in the config file's templates, which the server re-seeds on every start; ${NOT_OURS}` });
    } else if (!existingTemplate) {
      actions.push({ resource: 'template', action: 'create', name: prefix, detail: 'keep the 3 newest images', spec: template });
    } else if (!ownsTemplate(existingTemplate)) {
      actions.push({ resource: 'template', action: 'conflict', name: prefix, detail: `exists, ${templateOwner(existingTemplate)}; ${NOT_OURS}` });
    } else {
      const keys = new Set([...Object.keys(existingTemplate.body), ...Object.keys(template.body)]);
      const changed = [...keys].sort().filter((key) => canonical(existingTemplate.body[key]) !== canonical(template.body[key]));
      actions.push(
        changed.length === 0
          ? { resource: 'template', action: 'unchanged', name: prefix, detail: 'unchanged' }
          : { resource: 'template', action: 'update', name: prefix, detail: `${changed.join(', ')} changed`, spec: template },
      );
    }
  }

  // What apply created and the file no longer asks for.
  for (const rule of current.rules) {
    if (ownsRule(rule) && !seen.has(rule.prefix)) {
      actions.push({ resource: 'rule', action: 'delete', name: rule.prefix, detail: 'no longer in the file' });
      ruleSecretAfter.delete(rule.prefix);
    }
  }
  for (const secret of current.secrets) {
    if (!ownsSecret(secret) || wantedSecrets.has(secret.name)) continue;
    const users = [...ruleSecretAfter].filter(([, name]) => name === secret.name).map(([prefix]) => prefix);
    if (users.length > 0) {
      actions.push({ resource: 'secret', action: 'conflict', name: secret.name, detail: `apply would delete it, but it is the credential of rule ${users.join(', ')}; change that rule first` });
    } else {
      const prefix = secret.name.slice(SECRET_PREFIX.length);
      actions.push({ resource: 'secret', action: 'delete', name: secret.name, detail: seen.has(prefix) ? `rule ${prefix} no longer has credentials` : 'no longer in the file' });
    }
  }
  for (const template of current.templates) {
    if (ownsTemplate(template) && !seen.has(template.prefix)) {
      actions.push({ resource: 'template', action: 'delete', name: template.prefix, detail: 'no longer in the file' });
    }
  }
  return { actions };
}

const SYMBOL: Record<ActionKind, string> = { create: '+', update: '~', delete: '-', unchanged: '=', conflict: '!' };

/** One line per action: `+ rule ghcr (ghcr.io)`, `~ secret ecr-pullthroughcache/dockerhub (value changed)`. */
export function formatPlan(plan: Plan): string[] {
  return plan.actions.map((a) => `${SYMBOL[a.action]} ${a.resource} ${a.name} (${a.detail})`);
}

export interface PlanSummary {
  create: number;
  update: number;
  delete: number;
  unchanged: number;
  conflict: number;
}

export function summarizePlan(plan: Plan): PlanSummary {
  const summary: PlanSummary = { create: 0, update: 0, delete: 0, unchanged: 0, conflict: 0 };
  for (const action of plan.actions) summary[action.action] += 1;
  return summary;
}

export function conflictsOf(plan: Plan): PlanAction[] {
  return plan.actions.filter((a) => a.action === 'conflict');
}

export function changesOf(plan: Plan): PlanAction[] {
  return plan.actions.filter((a) => a.action === 'create' || a.action === 'update' || a.action === 'delete');
}
