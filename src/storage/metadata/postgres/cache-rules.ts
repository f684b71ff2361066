import type {
  CacheRuleMetadata,
  CacheRuleRecord,
  CreationTemplateMetadata,
  CreationTemplateRecord,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';
import { toRule, toTemplate, type RuleRow, type TemplateRow } from '../rows.ts';

export class PostgresCacheRules implements CacheRuleMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CacheRuleRecord[]> {
    const { rows } = await this.db.query<RuleRow>('SELECT * FROM cache_rules ORDER BY prefix');
    return rows.map(toRule);
  }

  async get(prefix: string): Promise<CacheRuleRecord | undefined> {
    const { rows } = await this.db.query<RuleRow>('SELECT * FROM cache_rules WHERE prefix = $1', [prefix]);
    const row = rows[0];
    return row && toRule(row);
  }

  async put(rule: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO cache_rules (prefix, upstream_url, upstream_kind, upstream_prefix, credential_secret, settings, source, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
       ON CONFLICT (prefix) DO UPDATE SET upstream_url = excluded.upstream_url, upstream_kind = excluded.upstream_kind,
         upstream_prefix = excluded.upstream_prefix, credential_secret = excluded.credential_secret,
         settings = excluded.settings, source = excluded.source, updated_at = excluded.updated_at`,
      [
        rule.prefix,
        rule.upstreamUrl,
        rule.upstreamKind,
        rule.upstreamPrefix ?? null,
        rule.credentialSecret ?? null,
        JSON.stringify(rule.settings),
        rule.source,
        at.getTime(),
      ],
    );
  }

  async delete(prefix: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM cache_rules WHERE prefix = $1', [prefix]);
    return (result.rowCount ?? 0) > 0;
  }
}

export class PostgresTemplates implements CreationTemplateMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CreationTemplateRecord[]> {
    const { rows } = await this.db.query<TemplateRow>('SELECT * FROM creation_templates ORDER BY prefix');
    return rows.map(toTemplate);
  }

  async put(template: Omit<CreationTemplateRecord, 'createdAt' | 'updatedAt'>, at: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO creation_templates (prefix, body, source, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (prefix) DO UPDATE SET body = excluded.body, source = excluded.source, updated_at = excluded.updated_at`,
      [template.prefix, JSON.stringify(template.body), template.source, at.getTime()],
    );
  }

  async delete(prefix: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM creation_templates WHERE prefix = $1', [prefix]);
    return (result.rowCount ?? 0) > 0;
  }
}
