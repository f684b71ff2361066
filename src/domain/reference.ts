import { RegistryError } from './errors.ts';
import { parseDigest, type Digest } from './digest.ts';

/** Repository name grammar from the OCI distribution spec. */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Distribution's limit; the spec asks clients to stay within 255 characters including the host. */
export const MAX_NAME_LENGTH = 255;

export type RepositoryName = string & { readonly __brand: 'RepositoryName' };
export type Tag = string & { readonly __brand: 'Tag' };

/** A manifest reference: a tag or a digest. */
export type Reference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest };

export function parseRepositoryName(input: string): RepositoryName {
  if (input.length === 0 || input.length > MAX_NAME_LENGTH || !NAME_GRAMMAR.test(input)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', {
      name: printable(input),
      rule: `lower-case components matching ${NAME_COMPONENT} joined by "/", at most ${MAX_NAME_LENGTH} characters`,
    });
  }
  return input as RepositoryName;
}

export function parseTag(input: string): Tag {
  if (!TAG_GRAMMAR.test(input)) {
    throw new RegistryError('TAG_INVALID', 'invalid tag', {
      tag: printable(input),
      rule: '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}',
    });
  }
  return input as Tag;
}

export function parseReference(input: string): Reference {
  if (input.includes(':')) return { kind: 'digest', digest: parseDigest(input) };
  return { kind: 'tag', tag: parseTag(input) };
}

/** Echo user input back in errors without control characters or unbounded length. */
function printable(input: string): string {
  const clean = input.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}
