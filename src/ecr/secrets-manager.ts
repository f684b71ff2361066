import { z } from 'zod';
import { SECRET_PREFIX, type CredentialStore } from '../secrets/credentials.ts';
import type { MetadataStore, SecretRecord } from '../storage/metadata-store.ts';
import type { AccessCheck } from './access.ts';
import { page, parseInput, type AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import type { Operation } from './json-protocol.ts';
import { secretArn, secretNameOf } from './secret-arns.ts';

export interface SecretsManagerDeps {
  aws: AwsIdentity;
  metadata: MetadataStore;
  credentials: CredentialStore;
  access: AccessCheck;
  now: () => Date;
}

const name = z.string().min(1).max(512).regex(/^[A-Za-z0-9/_+=.@-]+$/, 'must contain only alphanumeric characters and /_+=.@-');
const secretId = z.string().min(1).max(2048);
const secretString = z.string().min(1).max(65536);

/**
 * The part of AWS Secrets Manager that pull-through credentials need, at Cistern's endpoint. Only
 * `ecr-pullthroughcache/` secrets holding {"username", "accessToken"} are accepted; values are sealed at
 * rest and no call returns them (there is deliberately no GetSecretValue).
 */
export function secretsManagerOperations(deps: SecretsManagerDeps): Record<string, Operation> {
  const { aws, metadata } = deps;

  const resolve = async (id: string, options: { scheduled?: boolean } = {}): Promise<SecretRecord> => {
    await metadata.secrets.purgeDeleted(deps.now());
    const secretName = secretNameOf(aws, id);
    // Cistern's own secrets (such as its token-signing key) are not Secrets Manager's to show.
    const record = secretName.startsWith(SECRET_PREFIX) ? await metadata.secrets.find(secretName) : undefined;
    if (!record) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    if (record.deletionDate && !options.scheduled) {
      throw new AwsError('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.");
    }
    return record;
  };

  const store = async (secretName: string, value: string, description?: string) => {
    if (!secretName.startsWith(SECRET_PREFIX)) {
      throw new AwsError('InvalidParameterException', `Cistern keeps only pull-through cache credentials: the name must start with '${SECRET_PREFIX}'`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new AwsError('InvalidParameterException', 'SecretString must be JSON: {"username": "...", "accessToken": "..."}');
    }
    const credential = z.object({ username: z.string().min(1), accessToken: z.string().min(1) }).safeParse(parsed);
    if (!credential.success) throw new AwsError('InvalidParameterException', 'SecretString must be {"username": "...", "accessToken": "..."}');
    // Every upstream request reads the credential afresh, so the new value is in use from now on.
    await deps.credentials.put(secretName, credential.data, description);
  };

  const summary = (record: SecretRecord) => ({
    ARN: secretArn(aws, record.name),
    Name: record.name,
    ...(record.description && { Description: record.description }),
    CreatedDate: record.createdAt,
    LastChangedDate: record.updatedAt,
    ...(record.deletionDate && { DeletedDate: record.deletionDate }),
  });

  return {
    async CreateSecret(raw, { principal }) {
      const input = parseInput(
        z.object({ Name: name, SecretString: secretString.optional(), Description: z.string().max(2048).optional(), ClientRequestToken: z.string().optional(), Tags: z.array(z.unknown()).optional(), KmsKeyId: z.string().optional() }).strict(),
        raw,
      );
      await deps.access(principal, 'secretsmanager:CreateSecret', secretArn(aws, input.Name));
      await metadata.secrets.purgeDeleted(deps.now());
      const existing = await metadata.secrets.find(input.Name);
      if (existing?.deletionDate) {
        throw new AwsError('InvalidRequestException', "You can't create this secret because a secret with this name is already scheduled for deletion.");
      }
      if (existing) throw new AwsError('ResourceExistsException', `The operation failed because the secret ${input.Name} already exists.`);
      if (input.SecretString === undefined) {
        throw new AwsError('InvalidParameterException', 'Cistern stores secrets with their value: give SecretString');
      }
      await store(input.Name, input.SecretString, input.Description);
      return { ARN: secretArn(aws, input.Name), Name: input.Name, VersionId: input.ClientRequestToken ?? cryptoVersion() };
    },

    async PutSecretValue(raw, { principal }) {
      const input = parseInput(z.object({ SecretId: secretId, SecretString: secretString, ClientRequestToken: z.string().optional(), VersionStages: z.array(z.string()).optional() }).strict(), raw);
      const record = await resolve(input.SecretId);
      await deps.access(principal, 'secretsmanager:PutSecretValue', secretArn(aws, record.name));
      await store(record.name, input.SecretString, record.description);
      return { ARN: secretArn(aws, record.name), Name: record.name, VersionId: input.ClientRequestToken ?? cryptoVersion(), VersionStages: ['AWSCURRENT'] };
    },

    async UpdateSecret(raw, { principal }) {
      const input = parseInput(z.object({ SecretId: secretId, SecretString: secretString.optional(), Description: z.string().max(2048).optional(), ClientRequestToken: z.string().optional(), KmsKeyId: z.string().optional() }).strict(), raw);
      const record = await resolve(input.SecretId);
      await deps.access(principal, 'secretsmanager:UpdateSecret', secretArn(aws, record.name));
      if (input.SecretString !== undefined) {
        await store(record.name, input.SecretString, input.Description ?? record.description);
      } else if (input.Description !== undefined) {
        await metadata.secrets.put({ name: record.name, ciphertext: record.ciphertext, description: input.Description }, deps.now());
      }
      return { ARN: secretArn(aws, record.name), Name: record.name, ...(input.SecretString !== undefined && { VersionId: input.ClientRequestToken ?? cryptoVersion() }) };
    },

    async DescribeSecret(raw, { principal }) {
      const input = parseInput(z.object({ SecretId: secretId }).strict(), raw);
      const record = await resolve(input.SecretId, { scheduled: true });
      await deps.access(principal, 'secretsmanager:DescribeSecret', secretArn(aws, record.name));
      return summary(record);
    },

    async ListSecrets(raw, { principal }) {
      const input = parseInput(
        z.object({ MaxResults: z.number().int().min(1).max(100).optional(), NextToken: z.string().optional(), Filters: z.array(z.unknown()).optional(), IncludePlannedDeletion: z.boolean().optional(), SortOrder: z.enum(['asc', 'desc']).optional() }).strict(),
        raw,
      );
      await deps.access(principal, 'secretsmanager:ListSecrets', '*');
      await metadata.secrets.purgeDeleted(deps.now());
      const all = (await metadata.secrets.list({ includeScheduled: input.IncludePlannedDeletion ?? false })).filter((s) => s.name.startsWith(SECRET_PREFIX));
      const { items, nextToken } = page(all, (s) => s.name, { maxResults: input.MaxResults, nextToken: input.NextToken });
      return { SecretList: items.map(summary), ...(nextToken && { NextToken: nextToken }) };
    },

    async DeleteSecret(raw, { principal }) {
      const input = parseInput(z.object({ SecretId: secretId, RecoveryWindowInDays: z.number().int().min(7).max(30).optional(), ForceDeleteWithoutRecovery: z.boolean().optional() }).strict(), raw);
      if (input.RecoveryWindowInDays !== undefined && input.ForceDeleteWithoutRecovery) {
        throw new AwsError('InvalidParameterException', 'You can\'t use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.');
      }
      const record = await resolve(input.SecretId, { scheduled: true });
      await deps.access(principal, 'secretsmanager:DeleteSecret', secretArn(aws, record.name));
      const inUse = (await metadata.cacheRules.list()).filter((r) => r.credentialSecret === record.name).map((r) => r.prefix);
      if (inUse.length > 0) {
        throw new AwsError('InvalidRequestException', `The secret is the credential of pull-through cache rule(s) ${inUse.join(', ')}; update or delete those first.`);
      }
      // With a recovery window the secret stops working now and is purged when the window ends.
      const deletionDate = new Date(deps.now().getTime() + (input.ForceDeleteWithoutRecovery ? 0 : (input.RecoveryWindowInDays ?? 30) * 86_400_000));
      if (input.ForceDeleteWithoutRecovery) await metadata.secrets.delete(record.name);
      else await metadata.secrets.scheduleDeletion(record.name, deletionDate);
      return { ARN: secretArn(aws, record.name), Name: record.name, DeletionDate: deletionDate };
    },
  };
}

function cryptoVersion(): string {
  return globalThis.crypto.randomUUID();
}
