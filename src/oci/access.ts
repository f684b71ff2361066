import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthenticationError, type Caller, type RegistryAction, type RegistryAuth } from '../auth/registry-auth.ts';
import { RegistryError } from '../domain/errors.ts';
import type { ImportGuard } from '../registry/registry.ts';
import type { Route } from './routes.ts';

/** What a request may do beyond its route's own check. */
export interface RouteAccess {
  /** Asked before a pull imports from upstream. */
  guard?: ImportGuard;
  /** A cross-repository mount reads its source: allowed only with pull there. */
  mayMount: boolean;
}

/** The registry without authentication (tests of the bare registry, or a trusted network). */
export const OPEN: RouteAccess = { mayMount: true };

/**
 * The registry API's side of authentication: which action a route is, the 401 challenge for callers
 * without credentials, 403 for callers who fall short, and the Docker token endpoint.
 */
export function createOciAccess(auth: RegistryAuth, publicUrl: () => string) {
  const challenge = (res: ServerResponse, scope: string | undefined) => {
    res.setHeader('WWW-Authenticate', `Bearer realm="${publicUrl()}/v2/token",service="cistern"${scope ? `,scope="${scope}"` : ''}`);
  };

  const refuse = (res: ServerResponse, caller: Caller, denial: string, scope: string | undefined): never => {
    if (auth.isAnonymous(caller)) {
      challenge(res, scope);
      throw new RegistryError('UNAUTHORIZED', 'authentication required', { reason: denial });
    }
    throw new RegistryError('DENIED', denial);
  };

  const authenticate = async (req: IncomingMessage, challengeWith: () => void): Promise<Caller> => {
    try {
      return await auth.authenticate(req);
    } catch (err) {
      if (!(err instanceof AuthenticationError)) throw err;
      challengeWith();
      throw new RegistryError('UNAUTHORIZED', 'authentication required', { reason: err.message });
    }
  };

  return {
    /** Checks the caller against the route; throws UNAUTHORIZED (with a challenge) or DENIED. */
    async authorize(req: IncomingMessage, res: ServerResponse, route: Route, method: string): Promise<RouteAccess> {
      const caller = await authenticate(req, () => challenge(res, undefined));
      if (route.kind === 'base') {
        // Docker's login checks credentials here: nobody is "logged in" anonymously, even where anonymous pulls work.
        if (caller.kind === 'anonymous') refuse(res, caller, 'log in to use this registry', undefined);
        return { mayMount: false };
      }
      if (route.kind === 'catalog') {
        const denial = auth.catalogDenial(caller);
        if (denial) refuse(res, caller, denial, undefined);
        return { mayMount: false };
      }
      const action: RegistryAction =
        method === 'GET' || method === 'HEAD'
          ? route.kind === 'upload'
            ? 'push'
            : 'pull'
          : method === 'DELETE' && (route.kind === 'manifest' || route.kind === 'blob')
            ? 'delete'
            : 'push';
      const name = route.name;
      const denial = await auth.denial(caller, name, action);
      if (denial) refuse(res, caller, denial, `repository:${name}:${action}`);
      const from = route.kind === 'uploads' ? new URL(req.url ?? '/', 'http://cistern').searchParams.get('from') : null;
      const mayMount = from !== null && !(await auth.denial(caller, from, 'pull'));
      if (action !== 'pull') return { mayMount };
      return {
        mayMount,
        guard: async (creating) => {
          const refused = (await auth.denial(caller, name, 'import')) ?? (creating ? await auth.denial(caller, name, 'create') : undefined);
          if (refused) throw new RegistryError('DENIED', refused);
        },
      };
    },

    /** The Docker token endpoint (`GET /v2/token?service=&scope=`), with Basic credentials or none. */
    async token(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
      const caller = await authenticate(req, () => res.setHeader('WWW-Authenticate', 'Basic realm="cistern"'));
      const scopes = query.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const issued = await auth.issueToken(caller, scopes);
      const body = JSON.stringify({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt.toISOString() });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    },
  };
}
