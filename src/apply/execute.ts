import type { Config } from '../config/schema.ts';
import { SECRET_PREFIX, type CredentialStore } from '../secrets/credentials.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import { conflictsOf, formatPlan, ownsSecret, type CurrentSecret, type CurrentState, type Plan, type PlanAction } from './plan.ts';

export interface ApplyStores {
  metadata: MetadataStore;
  credentials: CredentialStore;
  now?: () => Date;
}

/** The plan has conflicts: executing it would change what apply did not create. */
export class ApplyConflictError extends Error {
  override name = 'ApplyConflictError';
  constructor(readonly conflicts: PlanAction[]) {
    super(
      `cistern apply changed nothing: ${conflicts.length === 1 ? 'a name the file wants is' : `${conflicts.length} names the file wants are`} held by something apply did not create:\n${formatPlan({ actions: conflicts })
        .map((line) => `  ${line}`)
        .join('\n')}`,
    );
  }
}

/**
 * The store as planApply needs it. Values are decrypted only for the `ecr-pullthroughcache/` secrets apply
 * owns (to tell whether the file changes them); `config` names what cistern.yaml seeds.
 */
export async function readCurrentState(stores: ApplyStores, config?: Pick<Config, 'registries' | 'templates'>): Promise<CurrentState> {
  const secrets: CurrentSecret[] = [];
  for (const record of await stores.metadata.secrets.list()) {
    if (!record.name.startsWith(SECRET_PREFIX)) continue;
    const secret: CurrentSecret = { name: record.name, ...(record.description !== undefined && { description: record.description }) };
    if (ownsSecret(secret)) {
      try {
        const credential = await stores.credentials.get(record.name);
        if (credential) secret.credential = credential;
        else secret.unreadable = true;
      } catch {
        secret.unreadable = true;
      }
    }
    secrets.push(secret);
  }
  return {
    rules: await stores.metadata.cacheRules.list(),
    templates: await stores.metadata.templates.list(),
    secrets,
    ...(config && { config: { registries: Object.keys(config.registries), templates: Object.keys(config.templates) } }),
  };
}

const STEPS: { resource: PlanAction['resource']; action: 'create' | 'update' | 'delete' }[][] = [
  // Secrets before the rules that name them; rules are deleted (or stop naming a secret) before the secret goes.
  [
    { resource: 'secret', action: 'create' },
    { resource: 'secret', action: 'update' },
  ],
  [
    { resource: 'rule', action: 'create' },
    { resource: 'rule', action: 'update' },
  ],
  [
    { resource: 'template', action: 'create' },
    { resource: 'template', action: 'update' },
  ],
  [{ resource: 'rule', action: 'delete' }],
  [{ resource: 'secret', action: 'delete' }],
  [{ resource: 'template', action: 'delete' }],
];

/**
 * Carries out a plan from planApply: secrets (sealed by the CredentialStore), then rules, then templates, then
 * deletions. Refuses a plan with conflicts before changing anything. Returns the actions it performed.
 */
export async function executePlan(plan: Plan, stores: ApplyStores): Promise<PlanAction[]> {
  const conflicts = conflictsOf(plan);
  if (conflicts.length > 0) throw new ApplyConflictError(conflicts);
  const now = stores.now ?? (() => new Date());
  const done: PlanAction[] = [];
  for (const step of STEPS) {
    for (const action of plan.actions) {
      if (!step.some((s) => s.resource === action.resource && s.action === action.action)) continue;
      await perform(action, stores, now);
      done.push(action);
    }
  }
  return done;
}

async function perform(action: PlanAction, stores: ApplyStores, now: () => Date): Promise<void> {
  const missing = () => new Error(`plan action ${action.action} ${action.resource} ${action.name} has nothing to write`);
  switch (action.resource) {
    case 'secret':
      if (action.action === 'delete') await stores.metadata.secrets.delete(action.name);
      else if (action.spec) await stores.credentials.put(action.spec.name, action.spec.credential, action.spec.description);
      else throw missing();
      return;
    case 'rule':
      if (action.action === 'delete') await stores.metadata.cacheRules.delete(action.name);
      else if (action.spec) await stores.metadata.cacheRules.put(action.spec, now());
      else throw missing();
      return;
    case 'template':
      if (action.action === 'delete') await stores.metadata.templates.delete(action.name);
      else if (action.spec) await stores.metadata.templates.put({ prefix: action.spec.prefix, body: action.spec.body, source: 'api' }, now());
      else throw missing();
      return;
  }
}
