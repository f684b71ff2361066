import { RegistryError } from '../domain/errors.ts';

/** Why an upstream could not answer; every kind lets the cache serve what it has (stale-if-error). */
export type UpstreamFault = 'unreachable' | 'timeout' | 'server-error' | 'rate-limited' | 'unauthorized' | 'corrupt' | 'protocol';

/** An upstream failure, named for the client: which upstream, and what went wrong. Never carries credentials. */
export class UpstreamFailure extends RegistryError {
  constructor(
    readonly upstream: string,
    readonly fault: UpstreamFault,
    cause: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(
      fault === 'rate-limited' ? 'TOOMANYREQUESTS' : 'UPSTREAM_FAILED',
      fault === 'rate-limited'
        ? `upstream ${upstream} is rate-limiting pulls and nothing is cached to serve instead`
        : `upstream ${upstream} failed: ${cause}`,
      { upstream, fault, cause, ...(retryAfterSeconds !== undefined && { retryAfterSeconds }) },
    );
    this.name = 'UpstreamFailure';
  }
}

/** A request that got no answer: a timeout, or the upstream unreachable (refused, reset, unknown host). */
export function networkFailure(upstream: string, err: unknown, what = ''): UpstreamFailure {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  const prefix = what ? `${what} ` : '';
  return /TIMEOUT/i.test(code)
    ? new UpstreamFailure(upstream, 'timeout', `${prefix}timed out (${code})`)
    : new UpstreamFailure(upstream, 'unreachable', `${prefix}unreachable (${code || (err as Error | undefined)?.message || 'network error'})`);
}
