import { z } from 'zod';
import { isRulePrefix, PREFIX_MESSAGE, UPSTREAM_KINDS } from '../config/schema.ts';
import { ROOT } from '../cache/rules.ts';
import { SECRET_PREFIX, type CredentialStore } from '../secrets/credentials.ts';
import type { CacheRuleRecord, MetadataStore } from '../storage/metadata-store.ts';
import { kindOfHost, upstreamUrl } from '../upstream/presets.ts';
import { AwsError } from './errors.ts';
import { pagination, page, parseInput, registryId, type AwsIdentity } from './context.ts';
import type { Operation } from './json-protocol.ts';
import type { AccessCheck } from './access.ts';
import { secretArn, secretNameOf } from './secret-arns.ts';

/** ECR caps pull-through cache rules at 50 per registry. */
const MAX_RULES = 50;

export interface PullThroughRuleDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  credentials: CredentialStore;
  access: AccessCheck;
  /** Hosts (or host:port) an API-created rule may point at; the config file is trusted and exempt. */
  isAllowedUpstream: (url: URL) => boolean;
  reloadRules: () => Promise<void>;
  /** Authenticates against the rule's upstream for real; resolves to a failure message or undefined. */
  validate: (prefix: string) => Promise<string | undefined>;
  now: () => Date;
}

const prefix = z.string().refine(isRulePrefix, PREFIX_MESSAGE);
const arn = z.string().min(50).max(612);

const createInput = z
  .object({
    ecrRepositoryPrefix: prefix,
    upstreamRegistryUrl: z.string().min(1).max(512),
    registryId,
    upstreamRegistry: z.enum([...UPSTREAM_KINDS.filter((k) => k !== 'oci' && k !== 'gitlab-container-registry'), 'gitlab-container-registry']).optional(),
    credentialArn: arn.optional(),
    customRoleArn: z.string().max(2048).optional(),
    upstreamRepositoryPrefix: prefix.optional(),
  })
  .strict();

export function pullThroughRuleOperations(deps: PullThroughRuleDeps): Record<string, Operation> {
  const { aws, metadata } = deps;

  const describe = (rule: CacheRuleRecord) => ({
    ecrRepositoryPrefix: rule.prefix,
    upstreamRegistryUrl: rule.upstreamUrl.replace(/^https:\/\//, ''),
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
    registryId: aws.accountId,
    upstreamRegistry: rule.upstreamKind,
    ...(rule.credentialSecret && { credentialArn: secretArn(aws, rule.credentialSecret) }),
    ...(typeof rule.settings.customRoleArn === 'string' && { customRoleArn: rule.settings.customRoleArn }),
    upstreamRepositoryPrefix: rule.upstreamPrefix ?? ROOT,
  });

  const existing = async (p: string) => {
    const rule = await metadata.cacheRules.get(p);
    if (!rule) throw new AwsError('PullThroughCacheRuleNotFoundException', `The pull-through cache rule with prefix '${p}' does not exist in the registry with id '${aws.accountId}'`);
    return rule;
  };

  /** A credentialArn names an `ecr-pullthroughcache/` secret that exists. */
  const credentialSecret = async (credentialArn: string | undefined): Promise<string | undefined> => {
    if (credentialArn === undefined) return undefined;
    const name = secretNameOf(aws, credentialArn);
    if (!name.startsWith(SECRET_PREFIX)) {
      throw new AwsError('InvalidParameterException', `The secret name must start with '${SECRET_PREFIX}'`);
    }
    if (!(await metadata.secrets.get(name))) throw new AwsError('SecretNotFoundException', `The secret '${credentialArn}' does not exist`);
    try {
      await deps.credentials.get(name);
    } catch {
      throw new AwsError('UnableToDecryptSecretValueException', `The secret '${credentialArn}' cannot be decrypted or does not hold {"username", "accessToken"}`);
    }
    return name;
  };

  return {
    async CreatePullThroughCacheRule(raw, { principal }) {
      const input = parseInput(createInput, raw);
      await deps.access(principal, 'ecr:CreatePullThroughCacheRule', '*');
      let url: URL;
      try {
        url = new URL(/^https?:\/\//.test(input.upstreamRegistryUrl) ? input.upstreamRegistryUrl : `https://${input.upstreamRegistryUrl}`);
      } catch {
        throw new AwsError('InvalidParameterException', 'upstreamRegistryUrl is not a registry host or URL');
      }
      if (!deps.isAllowedUpstream(url)) {
        throw new AwsError('UnsupportedUpstreamRegistryException', `The upstream registry ${url.host} is not allowed; add it to pullThrough.allowedUpstreams in the config`);
      }
      if (await metadata.cacheRules.get(input.ecrRepositoryPrefix)) {
        throw new AwsError('PullThroughCacheRuleAlreadyExistsException', `A pull-through cache rule with prefix '${input.ecrRepositoryPrefix}' already exists`);
      }
      if ((await metadata.cacheRules.list()).length >= MAX_RULES) {
        throw new AwsError('LimitExceededException', `The registry already has the maximum of ${MAX_RULES} pull-through cache rules`);
      }
      const kind = input.upstreamRegistry ?? kindOfHost(url.host);
      const secret = await credentialSecret(input.credentialArn);
      await metadata.cacheRules.put(
        {
          prefix: input.ecrRepositoryPrefix,
          upstreamUrl: upstreamUrl(url.href, kind),
          upstreamKind: kind,
          ...(input.upstreamRepositoryPrefix && input.upstreamRepositoryPrefix !== ROOT && { upstreamPrefix: input.upstreamRepositoryPrefix }),
          ...(secret && { credentialSecret: secret }),
          settings: { ...(input.customRoleArn && { customRoleArn: input.customRoleArn }) },
          source: 'api',
        },
        deps.now(),
      );
      await deps.reloadRules();
      return describe(await existing(input.ecrRepositoryPrefix));
    },

    async DescribePullThroughCacheRules(raw, { principal }) {
      const input = parseInput(z.object({ registryId, ecrRepositoryPrefixes: z.array(prefix).min(1).max(100).optional(), ...pagination }).strict(), raw);
      await deps.access(principal, 'ecr:DescribePullThroughCacheRules', '*');
      let rules = await metadata.cacheRules.list();
      if (input.ecrRepositoryPrefixes) {
        for (const p of input.ecrRepositoryPrefixes) await existing(p);
        rules = rules.filter((r) => input.ecrRepositoryPrefixes!.includes(r.prefix));
      }
      const { items, nextToken } = page(rules, (r) => r.prefix, input);
      return { pullThroughCacheRules: items.map(describe), ...(nextToken && { nextToken }) };
    },

    async UpdatePullThroughCacheRule(raw, { principal }) {
      const input = parseInput(z.object({ registryId, ecrRepositoryPrefix: prefix, credentialArn: arn.optional(), customRoleArn: z.string().max(2048).optional() }).strict(), raw);
      await deps.access(principal, 'ecr:UpdatePullThroughCacheRule', '*');
      const rule = await existing(input.ecrRepositoryPrefix);
      const secret = input.credentialArn === undefined ? rule.credentialSecret : await credentialSecret(input.credentialArn);
      const { createdAt: _c, updatedAt: _u, credentialSecret: _s, ...rest } = rule;
      await metadata.cacheRules.put(
        {
          ...rest,
          ...(secret && { credentialSecret: secret }),
          settings: { ...rule.settings, ...(input.customRoleArn && { customRoleArn: input.customRoleArn }) },
          source: 'api',
        },
        deps.now(),
      );
      await deps.reloadRules();
      const updated = describe(await existing(input.ecrRepositoryPrefix));
      return { ecrRepositoryPrefix: updated.ecrRepositoryPrefix, registryId: aws.accountId, updatedAt: updated.updatedAt, ...(updated.credentialArn && { credentialArn: updated.credentialArn }), ...(updated.customRoleArn && { customRoleArn: updated.customRoleArn }), upstreamRepositoryPrefix: updated.upstreamRepositoryPrefix };
    },

    async DeletePullThroughCacheRule(raw, { principal }) {
      const input = parseInput(z.object({ registryId, ecrRepositoryPrefix: prefix }).strict(), raw);
      await deps.access(principal, 'ecr:DeletePullThroughCacheRule', '*');
      const rule = describe(await existing(input.ecrRepositoryPrefix));
      await metadata.cacheRules.delete(input.ecrRepositoryPrefix);
      await deps.reloadRules();
      return rule;
    },

    async ValidatePullThroughCacheRule(raw, { principal }) {
      const input = parseInput(z.object({ registryId, ecrRepositoryPrefix: prefix }).strict(), raw);
      await deps.access(principal, 'ecr:ValidatePullThroughCacheRule', '*');
      const rule = describe(await existing(input.ecrRepositoryPrefix));
      const failure = await deps.validate(input.ecrRepositoryPrefix);
      return {
        ecrRepositoryPrefix: rule.ecrRepositoryPrefix,
        registryId: aws.accountId,
        upstreamRegistryUrl: rule.upstreamRegistryUrl,
        ...(rule.credentialArn && { credentialArn: rule.credentialArn }),
        ...(rule.customRoleArn && { customRoleArn: rule.customRoleArn }),
        upstreamRepositoryPrefix: rule.upstreamRepositoryPrefix,
        isValid: failure === undefined,
        ...(failure !== undefined && { failure }),
      };
    },
  };
}
