import type {
  CacheRuleMetadata,
  CacheRuleRecord,
  CreationTemplateMetadata,
  CreationTemplateRecord,
} from '../../metadata-store.ts';
import { type Db } from './database.ts';

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

interface RuleRow {
  prefix: string;
  upstream_url: string;
  upstream_kind: string;
  upstream_prefix: string | null;
  credential_secret: string | null;
  settings: string;
  source: string;
  created_at: number;
  updated_at: number;
}

function toRule(row: RuleRow): CacheRuleRecord {
  return {
    prefix: row.prefix,
    upstreamUrl: row.upstream_url,
    upstreamKind: row.upstream_kind,
    ...(row.upstream_prefix !== null && { upstreamPrefix: row.upstream_prefix }),
    ...(row.credential_secret !== null && { credentialSecret: row.credential_secret }),
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    source: row.source as CacheRuleRecord['source'],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export class SqliteTemplates implements CreationTemplateMetadata {
  constructor(private readonly db: Db) {}

  async list(): Promise<CreationTemplateRecord[]> {
    const rows = this.db.prepare('SELECT * FROM creation_templates ORDER BY prefix').all() as {
      prefix: string;
      body: string;
      source: string;
      created_at: number;
      updated_at: number;
    }[];
    return rows.map((row) => ({
      prefix: row.prefix,
      body: JSON.parse(row.body) as Record<string, unknown>,
      source: row.source as CreationTemplateRecord['source'],
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    }));
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
