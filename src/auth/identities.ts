import { createHash, randomBytes } from 'node:crypto';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { IdentityMetadata, UserRecord } from '../storage/metadata-store.ts';

/** Who is calling: a user and the policy documents that say what they may do. */
export interface Principal {
  name: string;
  policy: unknown[];
}

/** ECR's registry passwords are valid for 12 hours. */
export const LOGIN_TOKEN_LIFETIME_MS = 12 * 3_600_000;

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * Users, their access keys (id + secret, the secret sealed at rest and shown once) and registry login
 * tokens (stored as hashes only). The one place that turns a credential into a principal.
 */
export class IdentityService {
  constructor(
    private readonly store: IdentityMetadata,
    private readonly box: SecretBox,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async createUser(name: string, policy: unknown[]): Promise<void> {
    if (!/^[A-Za-z0-9+=,.@_-]{1,64}$/.test(name)) throw new Error('a user name is 1-64 characters of letters, digits and +=,.@_-');
    await this.store.putUser({ name, policy }, this.now());
  }

  getUser(name: string): Promise<UserRecord | undefined> {
    return this.store.getUser(name);
  }

  /** A new access key; the secret is returned here and never again. */
  async createKey(userName: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
    if (!(await this.store.getUser(userName))) throw new Error(`no user ${userName}`);
    const bytes = randomBytes(16);
    const accessKeyId = `CKIA${Array.from(bytes, (b) => KEY_ID_ALPHABET[b % 32]).join('')}`;
    const secretAccessKey = randomBytes(30).toString('base64');
    await this.store.putKey({ id: accessKeyId, userName, sealedSecret: this.box.seal(accessKeyId, secretAccessKey), active: true }, this.now());
    return { accessKeyId, secretAccessKey };
  }

  /** The secret of an active key, for verifying signatures; undefined for unknown or inactive keys. */
  async secretFor(accessKeyId: string): Promise<string | undefined> {
    const key = await this.store.getKey(accessKeyId);
    if (!key?.active) return undefined;
    return this.box.open(accessKeyId, key.sealedSecret);
  }

  async principalForKey(accessKeyId: string): Promise<Principal | undefined> {
    const key = await this.store.getKey(accessKeyId);
    if (!key?.active) return undefined;
    return this.principal(key.userName);
  }

  /** A registry password for `docker login -u AWS` (GetAuthorizationToken). */
  async issueLoginToken(userName: string): Promise<{ token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.now().getTime() + LOGIN_TOKEN_LIFETIME_MS);
    await this.store.putLoginToken(hashToken(token), userName, expiresAt);
    await this.store.deleteExpiredLoginTokens(this.now());
    return { token, expiresAt };
  }

  async principalForLoginToken(token: string): Promise<Principal | undefined> {
    const found = await this.store.getLoginToken(hashToken(token));
    if (!found || found.expiresAt <= this.now()) return undefined;
    return this.principal(found.userName);
  }

  private async principal(name: string): Promise<Principal | undefined> {
    const user = await this.store.getUser(name);
    return user && { name: user.name, policy: user.policy };
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
