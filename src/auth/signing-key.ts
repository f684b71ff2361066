import { randomBytes } from 'node:crypto';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';

const NAME = 'cistern/registry-token-key';

/**
 * The key that signs registry bearer tokens, kept sealed in the metadata store so every instance that
 * shares the store accepts every other's tokens. Made on first use.
 */
export async function tokenSigningKey(metadata: MetadataStore, box: SecretBox, now: Date): Promise<Uint8Array> {
  const existing = await metadata.secrets.get(NAME);
  if (existing) return Buffer.from(box.open(NAME, existing.ciphertext), 'base64');
  const key = randomBytes(32);
  await metadata.secrets.put({ name: NAME, ciphertext: box.seal(NAME, key.toString('base64')), description: 'signs registry bearer tokens' }, now);
  return key;
}
