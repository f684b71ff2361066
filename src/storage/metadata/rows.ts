import type { Digest } from '../../domain/digest.ts';
import type { Descriptor } from '../../domain/manifest.ts';
import type {
  AccessKeyRecord,
  CacheRuleRecord,
  CreationTemplateRecord,
  ManifestRecord,
  SecretRecord,
  UploadSession,
  UserRecord,
} from '../metadata-store.ts';

/*
 * Rows as both SQL drivers read them, and the records they become. The schemas are the same; only the
 * way values arrive differs: SQLite hands integers over as numbers and flags as 0/1, PostgreSQL its
 * BIGINTs as strings and its booleans as booleans. The mappers take either.
 */

export type Integer = number | string;
export type Flag = number | boolean;

/** Times (ms since the epoch) and sizes, which stay well within 2^53. */
export function integerOf(value: Integer): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`metadata store: ${String(value)} is not a safe integer`);
  return number;
}

export function dateOf(millis: Integer): Date {
  return new Date(integerOf(millis));
}

export interface ManifestRow {
  name: string;
  digest: string;
  media_type: string;
  size: Integer;
  content: Buffer;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  pushed_at: Integer;
  last_pulled_at: Integer | null;
}

export function toManifestRecord(row: ManifestRow): ManifestRecord {
  return {
    repository: row.name,
    digest: row.digest as Digest,
    mediaType: row.media_type,
    size: integerOf(row.size),
    content: row.content,
    ...(row.subject && { subject: row.subject as Digest }),
    ...(row.artifact_type && { artifactType: row.artifact_type }),
    ...(row.annotations && { annotations: JSON.parse(row.annotations) as Record<string, string> }),
    pushedAt: dateOf(row.pushed_at),
    ...(row.last_pulled_at !== null && { lastPulledAt: dateOf(row.last_pulled_at) }),
  };
}

export type ReferrerRow = Pick<ManifestRow, 'digest' | 'media_type' | 'size' | 'artifact_type' | 'annotations'>;

/** A manifest as the referrers API lists it. */
export function toReferrer(row: ReferrerRow): Descriptor {
  return {
    mediaType: row.media_type,
    digest: row.digest as Digest,
    size: integerOf(row.size),
    ...(row.artifact_type && { artifactType: row.artifact_type }),
    ...(row.annotations && { annotations: JSON.parse(row.annotations) as Record<string, string> }),
  };
}

export interface UploadRow {
  id: string;
  repository: string;
  started_at: Integer;
  updated_at: Integer;
}

export function toUpload(row: UploadRow): UploadSession {
  return { id: row.id, repository: row.repository, startedAt: dateOf(row.started_at), updatedAt: dateOf(row.updated_at) };
}

export interface SecretRow {
  name: string;
  ciphertext: Buffer;
  description: string | null;
  created_at: Integer;
  updated_at: Integer;
  deleted_at: Integer | null;
}

export function toSecret(row: SecretRow): SecretRecord {
  return {
    name: row.name,
    ciphertext: row.ciphertext,
    ...(row.description !== null && { description: row.description }),
    createdAt: dateOf(row.created_at),
    updatedAt: dateOf(row.updated_at),
    ...(row.deleted_at !== null && { deletionDate: dateOf(row.deleted_at) }),
  };
}

export interface RuleRow {
  prefix: string;
  upstream_url: string;
  upstream_kind: string;
  upstream_prefix: string | null;
  credential_secret: string | null;
  settings: string;
  source: string;
  created_at: Integer;
  updated_at: Integer;
}

export function toRule(row: RuleRow): CacheRuleRecord {
  return {
    prefix: row.prefix,
    upstreamUrl: row.upstream_url,
    upstreamKind: row.upstream_kind,
    ...(row.upstream_prefix !== null && { upstreamPrefix: row.upstream_prefix }),
    ...(row.credential_secret !== null && { credentialSecret: row.credential_secret }),
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    source: row.source as CacheRuleRecord['source'],
    createdAt: dateOf(row.created_at),
    updatedAt: dateOf(row.updated_at),
  };
}

export interface TemplateRow {
  prefix: string;
  body: string;
  source: string;
  created_at: Integer;
  updated_at: Integer;
}

export function toTemplate(row: TemplateRow): CreationTemplateRecord {
  return {
    prefix: row.prefix,
    body: JSON.parse(row.body) as Record<string, unknown>,
    source: row.source as CreationTemplateRecord['source'],
    createdAt: dateOf(row.created_at),
    updatedAt: dateOf(row.updated_at),
  };
}

export interface UserRow {
  name: string;
  policy: string;
  created_at: Integer;
}

export function toUser(row: UserRow): UserRecord {
  return { name: row.name, policy: JSON.parse(row.policy) as unknown[], createdAt: dateOf(row.created_at) };
}

export interface KeyRow {
  id: string;
  user_name: string;
  secret: Buffer;
  active: Flag;
  created_at: Integer;
}

export function toKey(row: KeyRow): AccessKeyRecord {
  return { id: row.id, userName: row.user_name, sealedSecret: row.secret, active: row.active === true || row.active === 1, createdAt: dateOf(row.created_at) };
}
