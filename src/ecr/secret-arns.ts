import { createHash } from 'node:crypto';
import type { AwsIdentity } from './context.ts';

/**
 * Secrets Manager ARNs end in the name plus a dash and six random characters. Cistern derives the six
 * from the name, so a secret's ARN is stable and needs no extra column.
 */
export function secretArn(aws: AwsIdentity, name: string): string {
  const suffix = createHash('sha256').update(name).digest('base64url').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 6);
  return `arn:aws:secretsmanager:${aws.region}:${aws.accountId}:secret:${name}-${suffix}`;
}

/** The secret name an ARN (with or without the suffix) or a plain name refers to. */
export function secretNameOf(aws: AwsIdentity, idOrArn: string): string {
  const prefix = `arn:aws:secretsmanager:${aws.region}:${aws.accountId}:secret:`;
  if (!idOrArn.startsWith('arn:')) return idOrArn;
  if (!idOrArn.startsWith(prefix)) return idOrArn; // another account or region: will not be found
  const rest = idOrArn.slice(prefix.length);
  const withoutSuffix = rest.replace(/-[A-Za-z0-9]{6}$/, '');
  return secretArn(aws, withoutSuffix) === idOrArn ? withoutSuffix : rest;
}
