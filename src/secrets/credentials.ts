import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { SecretMetadata } from '../storage/metadata-store.ts';
import type { SecretBox } from './secret-box.ts';

/** An upstream credential in ECR's secret format. */
export interface Credential {
  username: string;
  accessToken: string;
}

/** Names a credential without revealing it: what is derived from one (tokens, passwords) is kept under this. */
export function credentialFingerprint(credential: Credential | undefined): string {
  if (!credential) return 'anonymous';
  return createHash('sha256').update(`${credential.username}\0${credential.accessToken}`).digest('base64url').slice(0, 16);
}

const credentialSchema = z.object({ username: z.string().min(1), accessToken: z.string().min(1) });

/** ECR requires pull-through-cache secrets to live under this prefix; so does Cistern. */
export const SECRET_PREFIX = 'ecr-pullthroughcache/';

/**
 * Upstream credentials, sealed at rest. Every read decrypts from the store, so a rotated secret is used
 * by every rule that names it from the next upstream request on.
 */
export class CredentialStore {
  constructor(
    private readonly secrets: SecretMetadata,
    private readonly box: SecretBox,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async put(name: string, credential: Credential, description?: string): Promise<void> {
    const value = credentialSchema.parse(credential);
    await this.secrets.put(
      { name, ciphertext: this.box.seal(name, JSON.stringify(value)), ...(description && { description }) },
      this.now(),
    );
  }

  async get(name: string): Promise<Credential | undefined> {
    const record = await this.secrets.get(name);
    if (!record) return undefined;
    const parsed = credentialSchema.safeParse(JSON.parse(this.box.open(name, record.ciphertext)));
    if (!parsed.success) throw new Error(`secret ${name} does not hold {"username", "accessToken"}`);
    return parsed.data;
  }
}
