import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { jwtVerify, SignJWT } from 'jose';
import type { AccessControl } from './access-control.ts';
import type { IdentityService, Principal } from './identities.ts';

/** What a registry client asks to do to a repository, in the Docker token protocol's terms. */
export type RegistryAction = 'pull' | 'push' | 'delete';

/** What Cistern checks each registry action against: ECR's permission names. */
const PERMISSIONS: Record<RegistryAction | 'import' | 'create' | 'catalog', string[]> = {
  pull: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
  push: ['ecr:PutImage', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload'],
  delete: ['ecr:BatchDeleteImage'],
  import: ['ecr:BatchImportUpstreamImage'],
  create: ['ecr:CreateRepository'],
  catalog: ['ecr:DescribeRepositories'],
};

export interface AnonymousGrant {
  prefix: string;
  actions: ('pull' | 'import' | 'push' | 'delete')[];
}

/** Who is making a registry request: a principal, a bearer token's grants, or nobody. */
export type Caller =
  | { kind: 'anonymous' }
  | { kind: 'principal'; principal: Principal }
  | { kind: 'token'; subject: string; access: TokenAccess[]; expiresAt: number };

export interface TokenAccess {
  type: 'repository';
  name: string;
  actions: string[];
}

export class AuthenticationError extends Error {}

const CALLER_CACHE_MS = 10_000;

/** The subject of tokens issued without credentials; ':' cannot occur in a user name. */
const ANONYMOUS_SUBJECT = 'anonymous:';

/**
 * Authentication and authorization for the registry API: Basic with an access key (or `AWS` and a
 * GetAuthorizationToken password), and the Docker token flow (/v2/token issues short-lived JWTs scoped to
 * repositories and actions). Decisions go through the same AccessControl as the ECR API.
 */
export class RegistryAuth {
  private constructor(
    private readonly identities: IdentityService,
    private readonly access: AccessControl,
    private readonly anonymous: AnonymousGrant[],
    private readonly arn: (repository: string) => string,
    private readonly key: Uint8Array,
    private readonly tokenLifetimeMs: number,
    private readonly now: () => Date,
  ) {}

  static async create(options: {
    identities: IdentityService;
    access: AccessControl;
    anonymous: AnonymousGrant[];
    repositoryArn: (repository: string) => string;
    /** The token signing key; every instance sharing a store must share it. */
    signingKey: () => Promise<Uint8Array>;
    tokenLifetimeMs: number;
    now: () => Date;
  }): Promise<RegistryAuth> {
    return new RegistryAuth(options.identities, options.access, options.anonymous, options.repositoryArn, await options.signingKey(), options.tokenLifetimeMs, options.now);
  }

  static newSigningKey(): Uint8Array {
    return randomBytes(32);
  }

  /**
   * Verified callers by Authorization header, briefly: checking a key (a store read and a decryption) or a
   * token (an HMAC) on every request of a pull costs more than serving a cached manifest. A deleted key or
   * user stops working within CALLER_CACHE_MS.
   */
  private readonly callers = new Map<string, { caller: Caller; until: number }>();

  /** Resolves the caller of a request; throws AuthenticationError for credentials that are wrong. */
  async authenticate(req: IncomingMessage): Promise<Caller> {
    const header = req.headers.authorization;
    if (!header) return { kind: 'anonymous' };
    const now = this.now().getTime();
    const cached = this.callers.get(header);
    if (cached && cached.until > now) return cached.caller;
    const caller = await this.verify(header);
    const expires = caller.kind === 'token' ? caller.expiresAt : Number.POSITIVE_INFINITY;
    if (this.callers.size >= 10_000) this.callers.clear();
    this.callers.set(header, { caller, until: Math.min(now + CALLER_CACHE_MS, expires) });
    return caller;
  }

  private async verify(header: string): Promise<Caller> {
    const [scheme, value] = header.split(' ', 2);
    if (scheme?.toLowerCase() === 'basic' && value) {
      return { kind: 'principal', principal: await this.basic(value) };
    }
    if (scheme?.toLowerCase() === 'bearer' && value) {
      try {
        const { payload } = await jwtVerify(value, this.key, { issuer: 'cistern', audience: 'cistern', currentDate: this.now() });
        return { kind: 'token', subject: String(payload.sub ?? ''), access: (payload.access as TokenAccess[] | undefined) ?? [], expiresAt: (payload.exp ?? 0) * 1000 };
      } catch {
        throw new AuthenticationError('the bearer token is invalid or has expired');
      }
    }
    throw new AuthenticationError('unsupported Authorization scheme');
  }

  private async basic(value: string): Promise<Principal> {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (colon > 0 && user === 'AWS') {
      const principal = await this.identities.principalForLoginToken(password);
      if (principal) return principal;
    } else if (colon > 0) {
      const secret = await this.identities.secretFor(user);
      if (secret && safeEqual(secret, password)) {
        const principal = await this.identities.principalForKey(user);
        if (principal) return principal;
      }
    }
    throw new AuthenticationError('the user name or password is wrong');
  }

  /** Undefined when allowed; otherwise why not (naming the missing permission). */
  async denial(caller: Caller, repository: string, action: RegistryAction | 'import' | 'create'): Promise<string | undefined> {
    if (caller.kind === 'anonymous') {
      return this.anonymousAllows(repository, action === 'create' ? 'import' : action) ? undefined : `anonymous ${action} of ${repository} is not allowed; log in`;
    }
    if (caller.kind === 'token') {
      if ((action === 'import' || action === 'create') && caller.subject === ANONYMOUS_SUBJECT) {
        return this.anonymousAllows(repository, 'import') ? undefined : `anonymous import into ${repository} is not allowed; log in`;
      }
      if (action === 'import' || action === 'create') {
        // A token says what its holder may pull; importing is decided by the subject's current policy.
        const principal = await this.principalOf(caller.subject);
        return principal ? this.policyDenial(principal, action, repository) : `token subject ${caller.subject} no longer exists`;
      }
      const granted = caller.access.some((a) => a.type === 'repository' && a.name === repository && (a.actions.includes(action) || a.actions.includes('*')));
      return granted ? undefined : `the bearer token does not grant ${action} on ${repository}`;
    }
    return this.policyDenial(caller.principal, action, repository);
  }

  /** Whether the caller has no credentials behind it (no Authorization, or a token issued without). */
  isAnonymous(caller: Caller): boolean {
    return caller.kind === 'anonymous' || (caller.kind === 'token' && caller.subject === ANONYMOUS_SUBJECT);
  }

  /** Listing every repository (the catalog) needs ecr:DescribeRepositories on all of them. */
  catalogDenial(caller: Caller): string | undefined {
    if (caller.kind !== 'principal') return 'listing repositories needs credentials';
    return this.access.denial(caller.principal, PERMISSIONS.catalog[0]!, this.arn('*'));
  }

  /** The Docker token endpoint: the requested scopes, cut down to what the caller may do. */
  async issueToken(caller: Caller, scopes: string[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      const match = /^repository:([^:]+):([a-z*,]+)$/.exec(scope);
      if (!match) continue;
      const [, name, actions] = match as unknown as [string, string, string];
      const allowed: string[] = [];
      for (const action of actions.split(',')) {
        const wanted = action === '*' ? (['pull', 'push', 'delete'] as const) : [action as RegistryAction];
        for (const each of wanted) {
          if (each in PERMISSIONS && !(await this.denial(caller, name, each))) allowed.push(each);
        }
      }
      access.push({ type: 'repository', name, actions: [...new Set(allowed)] });
    }
    const issuedAt = this.now();
    const subject = caller.kind === 'principal' ? caller.principal.name : caller.kind === 'token' ? caller.subject : ANONYMOUS_SUBJECT;
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('cistern')
      .setAudience('cistern')
      .setSubject(subject)
      .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
      .setExpirationTime(Math.floor((issuedAt.getTime() + this.tokenLifetimeMs) / 1000))
      .setJti(randomBytes(12).toString('base64url'))
      .sign(this.key);
    return { token, expiresIn: Math.floor(this.tokenLifetimeMs / 1000), issuedAt };
  }

  private policyDenial(principal: Principal, action: RegistryAction | 'import' | 'create', repository: string): string | undefined {
    for (const permission of PERMISSIONS[action]) {
      const denial = this.access.denial(principal, permission, this.arn(repository));
      if (denial) return denial;
    }
    return undefined;
  }

  private anonymousAllows(repository: string, action: 'pull' | 'import' | 'push' | 'delete'): boolean {
    return this.anonymous.some((grant) => (grant.prefix === '*' || repository === grant.prefix || repository.startsWith(`${grant.prefix}/`)) && grant.actions.includes(action));
  }

  private async principalOf(name: string): Promise<Principal | undefined> {
    const user = await this.identities.getUser(name);
    return user && { name: user.name, policy: user.policy };
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
