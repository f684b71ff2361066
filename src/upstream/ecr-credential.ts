import { request, type Dispatcher } from 'undici';
import { signRequest } from '../auth/sigv4.ts';
import { credentialFingerprint, type Credential } from '../secrets/credentials.ts';
import { networkFailure, UpstreamFailure } from './failure.ts';

/** ECR registry hosts: `<account>.dkr.ecr.<region>.amazonaws.com` (and the `.com.cn` partition). */
const ECR_HOST = /^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;
const TARGET = 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken';
/** Ask for a new password this long before the old one expires (ECR's last 12 hours). */
const RENEW_EARLY_MS = 10 * 60_000;
/** A refused password younger than this is kept (see `refused`). */
const REFUSED_RETRY_AFTER_MS = 60_000;

/** Where an ECR registry's API lives, and the region its requests are signed for. */
export function ecrEndpoint(registryUrl: string, region: string | undefined): { apiUrl: URL; region: string } {
  const url = new URL(registryUrl);
  const match = ECR_HOST.exec(url.hostname);
  const resolved = region ?? match?.[1] ?? 'us-east-1';
  // An ECR-compatible registry that is not AWS (another Cistern) serves its API on its own origin.
  const apiUrl = match ? new URL(`https://api.ecr.${resolved}.amazonaws.com${match[2] ?? ''}/`) : new URL('/', url);
  return { apiUrl, region: resolved };
}

export interface EcrCredentialOptions {
  /** The rule's prefix, for errors. */
  name: string;
  registryUrl: string;
  region?: string;
  /** The rule's credential: an AWS access key (id as username, secret as accessToken), or `AWS` and a ready password. */
  credential: () => Promise<Credential | undefined>;
  dispatcher: Dispatcher;
  timeoutMs: number;
  now: () => number;
}

/**
 * An ECR upstream takes Basic auth with `AWS` and a 12-hour password that GetAuthorizationToken hands
 * out to a SigV4-signed caller. This turns the rule's access key into that password, kept until shortly
 * before it expires, when the key is rotated, or when the registry refuses it, so an ECR rule is
 * configured with a key once, as any other rule is with a token.
 */
export function ecrCredential(options: EcrCredentialOptions): {
  credential: () => Promise<Credential | undefined>;
  /** The registry refused the password: the next request asks for a new one. */
  refused: () => void;
} {
  const { apiUrl, region } = ecrEndpoint(options.registryUrl, options.region);
  let cached: { key: string; password: string; obtainedAt: number; renewAt: number } | undefined;
  let pending: { key: string; promise: Promise<string> } | undefined;

  const exchange = async (key: Credential): Promise<string> => {
    const body = '{}';
    const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': TARGET };
    const signed = signRequest(
      { method: 'POST', url: apiUrl, headers, body },
      { accessKeyId: key.username, secretAccessKey: key.accessToken },
      { region, service: 'ecr' },
      new Date(options.now()),
    );
    let res: Dispatcher.ResponseData;
    try {
      res = await request(apiUrl, {
        method: 'POST',
        headers: { ...headers, ...signed },
        body,
        dispatcher: options.dispatcher,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
    } catch (err) {
      throw networkFailure(options.name, err, 'ECR API');
    }
    const answer = (await res.body.json().catch(() => ({}))) as {
      __type?: unknown;
      authorizationData?: { authorizationToken?: unknown; expiresAt?: unknown }[];
    };
    if (res.statusCode >= 500) throw new UpstreamFailure(options.name, 'server-error', `ECR GetAuthorizationToken answered ${res.statusCode}`);
    if (res.statusCode === 429) throw new UpstreamFailure(options.name, 'rate-limited', 'ECR GetAuthorizationToken is rate-limited (429)');
    if (res.statusCode !== 200) {
      // An AWS JSON error names the refusal (UnrecognizedClientException, AccessDeniedException, ...), never
      // the key; an answer without one is not ECR's API at all.
      if (typeof answer.__type !== 'string') {
        throw new UpstreamFailure(options.name, 'protocol', `no ECR API at ${apiUrl.origin} (POST answered ${res.statusCode})`);
      }
      throw new UpstreamFailure(options.name, 'unauthorized', `ECR GetAuthorizationToken refused our access key (${answer.__type.split('#').pop()})`);
    }
    const data = answer.authorizationData?.[0];
    const decoded = typeof data?.authorizationToken === 'string' ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    if (!decoded.startsWith('AWS:')) throw new UpstreamFailure(options.name, 'protocol', 'ECR GetAuthorizationToken answered without a token');
    // expiresAt is epoch seconds in AWS JSON 1.1.
    const expiresAt = typeof data?.expiresAt === 'number' ? data.expiresAt * 1000 : options.now() + 60 * 60_000;
    cached = { key: credentialFingerprint(key), password: decoded.slice('AWS:'.length), obtainedAt: options.now(), renewAt: expiresAt - RENEW_EARLY_MS };
    return cached.password;
  };

  const credential = async (): Promise<Credential | undefined> => {
    const key = await options.credential();
    if (!key) return undefined;
    if (key.username === 'AWS') return key;
    const id = credentialFingerprint(key);
    if (cached?.key === id && cached.renewAt > options.now()) return { username: 'AWS', accessToken: cached.password };
    if (pending?.key !== id) {
      const promise = exchange(key).finally(() => {
        if (pending?.promise === promise) pending = undefined;
      });
      pending = { key: id, promise };
    }
    return { username: 'AWS', accessToken: await pending.promise };
  };
  return {
    credential,
    refused: () => {
      // A password refused right after it was issued points at the key's permissions, not its age:
      // asking again would only spend GetAuthorizationToken calls.
      if (cached && options.now() - cached.obtainedAt >= REFUSED_RETRY_AFTER_MS) cached = undefined;
    },
  };
}

