import type {
  CacheRuleMetadata,
  CacheRuleRecord,
  CreationTemplateMetadata,
  CreationTemplateRecord,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';
import { toRule, toTemplate, type RuleRow, type TemplateRow } from '../rows.ts';

export class SqliteCacheRules implements CacheRuleMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CacheRuleRecord[]> {
    return (this.db.prepare('SELECT * FROM cache_rules ORDER BY prefix').all() as RuleRow[]).map(toRule);
  }

  async get(prefix: string): Promise<CacheRuleRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM cache_rules WHERE prefix = ?').get(prefix) as RuleRow | undefined;
    return row && toRule(row);
  }

  async put(rule: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cache_rules (prefix, upstream_url, upstream_kind, upstream_prefix, credential_secret, settings, source, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (prefix) DO UPDATE SET upstream_url = excluded.upstream_url, upstream_kind = excluded.upstream_kind,
           upstream_prefix = excluded.upstream_prefix, credential_secret = excluded.credential_secret,
           settings = excluded.settings, source = excluded.source, updated_at = excluded.updated_at`,
      )
      .run(
        rule.prefix,
        rule.upstreamUrl,
        rule.upstreamKind,
        rule.upstreamPrefix ?? null,
        rule.credentialSecret ?? null,
        JSON.stringify(rule.settings),
        rule.source,
        at.getTime(),
        at.getTime(),
      );
  }

  async delete(prefix: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM cache_rules WHERE prefix = ?').run(prefix).changes > 0;
  }
}

export class SqliteTemplates implements CreationTemplateMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CreationTemplateRecord[]> {
    const rows = this.db.prepare('SELECT * FROM creation_templates ORDER BY prefix').all() as TemplateRow[];
    return rows.map(toTemplate);
  }

  async put(template: Omit<CreationTemplateRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO creation_templates (prefix, body, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (prefix) DO UPDATE SET body = excluded.body, source = excluded.source, updated_at = excluded.updated_at`,
      )
      .run(template.prefix, JSON.stringify(template.body), template.source, at.getTime(), at.getTime());
  }

  async delete(prefix: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM creation_templates WHERE prefix = ?').run(prefix).changes > 0;
  }
}
