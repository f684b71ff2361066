import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { SECRET_PREFIX, type CredentialStore } from '../secrets/credentials.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import { kindOfHost, upstreamUrl } from '../upstream/presets.ts';

/**
 * The config file seeds the store: its `registries` become cache rules (credentials sealed as
 * `ecr-pullthroughcache/<prefix>` secrets) and its `templates` creation templates. Rules and templates
 * the file once seeded and no longer lists are removed; those made through the API are left alone.
 */
export async function seedFromConfig(config: Config, metadata: MetadataStore, credentials: CredentialStore, log: Logger, now: Date): Promise<void> {
  for (const [prefix, entry] of Object.entries(config.registries)) {
    const host = /^https?:\/\//.test(entry.registry) ? new URL(entry.registry).host : entry.registry.split('/')[0]!;
    const kind = entry.kind ?? kindOfHost(host);
    let credentialSecret: string | undefined;
    if (entry.username && entry.accessToken) {
      credentialSecret = `${SECRET_PREFIX}${prefix}`;
      await credentials.put(credentialSecret, { username: entry.username, accessToken: entry.accessToken }, `credential for cache rule ${prefix} (from config)`);
    }
    await metadata.cacheRules.put(
      {
        prefix,
        upstreamUrl: upstreamUrl(entry.registry, kind),
        upstreamKind: kind,
        ...(entry.upstreamPrefix && { upstreamPrefix: entry.upstreamPrefix }),
        ...(credentialSecret && { credentialSecret }),
        settings: {
          ...(entry.freshness !== undefined && { freshnessMs: entry.freshness }),
          ...(entry.concurrency !== undefined && { concurrency: entry.concurrency }),
          ...(entry.maxBytes !== undefined && { maxBytes: entry.maxBytes }),
          ...(entry.evictAfterUnusedDays !== undefined && { evictAfterUnusedDays: entry.evictAfterUnusedDays }),
          ...(entry.region !== undefined && { region: entry.region }),
        },
        source: 'config',
      },
      now,
    );
  }
  for (const rule of await metadata.cacheRules.list()) {
    if (rule.source === 'config' && !(rule.prefix in config.registries)) {
      await metadata.cacheRules.delete(rule.prefix);
      log.info({ rule: rule.prefix }, 'removed cache rule no longer in the config file');
    }
  }
  for (const [prefix, template] of Object.entries(config.templates)) {
    const lifecyclePolicy = typeof template.lifecyclePolicy === 'string' ? template.lifecyclePolicy : template.lifecyclePolicy && JSON.stringify(template.lifecyclePolicy);
    await metadata.templates.put(
      {
        prefix,
        body: {
          ...(template.description && { description: template.description }),
          appliedFor: template.appliedFor,
          imageTagMutability: template.imageTagMutability,
          ...(lifecyclePolicy && { lifecyclePolicy }),
          scanOnPull: template.scanOnPull,
          resourceTags: Object.entries(template.resourceTags).map(([Key, Value]) => ({ Key, Value })),
        },
        source: 'config',
      },
      now,
    );
  }
  for (const template of await metadata.templates.list()) {
    if (template.source === 'config' && !(template.prefix in config.templates)) await metadata.templates.delete(template.prefix);
  }
}
