import { z } from 'zod';
import { AwsError } from './errors.ts';

/** Where ECR resources live: ARNs and registry ids are built from these. */
export interface AwsIdentity {
  region: string;
  accountId: string;
}

export function repositoryArn(aws: AwsIdentity, name: string): string {
  return `arn:aws:ecr:${aws.region}:${aws.accountId}:repository/${name}`;
}

/** Validates an operation's input, answering as ECR does for a bad parameter. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const at = issue?.path.join('.') || 'input';
  throw new AwsError('InvalidParameterException', `Invalid parameter at '${at}' failed to satisfy constraint: '${issue?.message ?? 'invalid'}'`);
}

/** ECR's pagination: an opaque nextToken and maxResults (1-1000). */
export const pagination = {
  nextToken: z.string().max(4096).optional(),
  maxResults: z.number().int().min(1).max(1000).optional(),
};

export function page<T>(items: T[], key: (item: T) => string, input: { nextToken?: string | undefined; maxResults?: number | undefined }, defaultSize = 100): { items: T[]; nextToken?: string } {
  let after: string | undefined;
  if (input.nextToken) {
    try {
      after = Buffer.from(input.nextToken, 'base64url').toString('utf8');
    } catch {
      throw new AwsError('InvalidParameterException', 'Invalid parameter at nextToken');
    }
  }
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const start = after === undefined ? 0 : sorted.findIndex((item) => key(item) > after);
  const from = start === -1 ? sorted.length : start;
  const size = input.maxResults ?? defaultSize;
  const slice = sorted.slice(from, from + size);
  const more = from + size < sorted.length;
  return { items: slice, ...(more && slice.length > 0 && { nextToken: Buffer.from(key(slice.at(-1)!)).toString('base64url') }) };
}

export const repositoryName = z
  .string()
  .min(2)
  .max(256)
  .regex(/^(?=.{2,256}$)((?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*)$/, 'must satisfy regular expression (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*');

export const registryId = z.string().regex(/^[0-9]{12}$/).optional();

export const tagList = z.array(z.object({ Key: z.string().min(1).max(128), Value: z.string().max(256) }).strict()).max(50);
