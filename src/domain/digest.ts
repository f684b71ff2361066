import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors.ts';

/** A validated content digest such as `sha256:<64 hex>`. */
export type Digest = string & { readonly __brand: 'Digest' };

const ENCODED_LENGTH = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof ENCODED_LENGTH;

// The OCI grammar allows other algorithms; we accept only those we can verify.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function parseDigest(input: string): Digest {
  if (input.length > 200 || !DIGEST_GRAMMAR.test(input)) {
    throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
      reason: 'malformed digest',
    });
  }
  const [algorithm, encoded] = input.split(':', 2) as [string, string];
  if (!(algorithm in ENCODED_LENGTH)) {
    throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm ${algorithm}`, {
      supported: Object.keys(ENCODED_LENGTH),
    });
  }
  const length = ENCODED_LENGTH[algorithm as DigestAlgorithm];
  if (encoded.length !== length || !/^[a-f0-9]+$/.test(encoded)) {
    throw new RegistryError('DIGEST_INVALID', `invalid ${algorithm} digest: expected ${length} lower-case hex characters`);
  }
  return input as Digest;
}

export function isDigest(input: string): boolean {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function hasher(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest;
}
