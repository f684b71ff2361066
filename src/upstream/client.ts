import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { RegistryError } from '../domain/errors.ts';
import { digestOf, isDigest, type Digest } from '../domain/digest.ts';
import { MANIFEST_MEDIA_TYPES } from '../domain/media-types.ts';
import { credentialFingerprint, type Credential } from '../secrets/credentials.ts';
import { parseChallenge, type Challenge } from './challenge.ts';
import { networkFailure, UpstreamFailure } from './failure.ts';
import { parseRateLimit, type QuotaTracker } from './quota.ts';
import { Semaphore } from './semaphore.ts';

export interface UpstreamClientOptions {
  /** The rule's prefix: names the upstream in logs, metrics and errors. */
  name: string;
  /** Base URL of the registry, e.g. https://registry-1.docker.io. */
  url: string;
  /** Read on every token fetch, so a rotated secret takes effect at once. */
  credential: () => Promise<Credential | undefined>;
  /** The upstream refused the credential: anything derived from it (an exchanged password) must be made anew. */
  credentialRefused?: () => void;
  dispatcher: Dispatcher;
  quota: QuotaTracker;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Attempts after the first, for network errors and 5xx. */
  retries: number;
  retryBaseDelayMs: number;
  maxManifestBytes: number;
  /** Requests (blob transfers included) this rule may have in flight upstream at once. */
  concurrency: number;
  now?: () => number;
  /** Every upstream response, for metrics. */
  onRequest?: (event: { method: string; kind: RequestKind; status: number | 'error' }) => void;
}

export type RequestKind = 'manifest' | 'blob' | 'tags' | 'token' | 'ping';

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface FetchedManifest extends ManifestHead {
  body: Buffer;
}

export interface BlobResponse {
  stream: Readable;
  /** The first byte this stream carries. */
  start: number;
  /** The whole blob's size. */
  size: number;
}

const ACCEPT_MANIFESTS = MANIFEST_MEDIA_TYPES.join(', ');
const MAX_REDIRECTS = 5;

interface CachedToken {
  value: string;
  expiresAt: number;
}

/**
 * One upstream registry, as seen by one cache rule: the Docker token flow with cached tokens per
 * repository scope, redirects to blob storage without our credentials, retries with jittered backoff,
 * and the upstream's rate limit read from every response.
 */
export class UpstreamClient {
  private readonly base: URL;
  private readonly now: () => number;
  private challenge: Challenge | undefined;
  private discovery: Promise<void> | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly tokenFetches = new Map<string, Promise<string | undefined>>();
  private readonly slots: Semaphore;

  constructor(private readonly options: UpstreamClientOptions) {
    this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    this.now = options.now ?? Date.now;
    this.slots = new Semaphore(options.concurrency);
  }

  get name(): string {
    return this.options.name;
  }

  /** HEAD a manifest: the freshness check, which Docker Hub does not count as a pull. */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    const res = await this.send('HEAD', 'manifest', repository, `manifests/${reference}`, { accept: ACCEPT_MANIFESTS });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    const digest = header(res.headers, 'docker-content-digest');
    if (!digest || !isDigest(digest)) {
      throw new UpstreamFailure(this.name, 'protocol', 'manifest HEAD answered without a valid Docker-Content-Digest');
    }
    return {
      digest: digest as Digest,
      mediaType: header(res.headers, 'content-type') ?? '',
      size: Number(header(res.headers, 'content-length') ?? 0),
    };
  }

  /** GET a manifest (a pull, on Docker Hub). The digest is computed from the bytes, never trusted. */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const res = await this.send('GET', 'manifest', repository, `manifests/${reference}`, { accept: ACCEPT_MANIFESTS });
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { upstream: this.name, repository, reference });
    }
    const declared = Number(header(res.headers, 'content-length') ?? 0);
    if (declared > this.options.maxManifestBytes) {
      res.body.destroy();
      throw new UpstreamFailure(this.name, 'protocol', `manifest of ${declared} bytes exceeds the limit`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.options.maxManifestBytes) {
          res.body.destroy();
          throw new UpstreamFailure(this.name, 'protocol', 'manifest exceeds the size limit');
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      throw err instanceof RegistryError ? err : networkFailure(this.name, err);
    }
    const body = Buffer.concat(chunks, size);
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';', 1)[0]!.trim();
    return { digest: digestOf(body), mediaType, size, body };
  }

  async headBlob(repository: string, digest: Digest): Promise<number | undefined> {
    const res = await this.send('HEAD', 'blob', repository, `blobs/${digest}`, {});
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    return Number(header(res.headers, 'content-length') ?? 0);
  }

  /** GET a blob from byte `start`, following redirects. Throws BLOB_UNKNOWN when upstream has none. */
  async getBlob(repository: string, digest: Digest, start = 0, signal?: AbortSignal): Promise<BlobResponse> {
    const res = await this.send('GET', 'blob', repository, `blobs/${digest}`, start > 0 ? { range: `bytes=${start}-` } : {}, signal);
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { upstream: this.name, digest });
    }
    const length = Number(header(res.headers, 'content-length') ?? Number.NaN);
    if (res.statusCode === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header(res.headers, 'content-range') ?? '');
      if (!range || Number(range[1]) !== start) {
        res.body.destroy();
        throw new UpstreamFailure(this.name, 'protocol', 'blob range response does not start where asked');
      }
      return { stream: res.body, start, size: Number(range[3]) };
    }
    if (!Number.isSafeInteger(length)) {
      res.body.destroy();
      throw new UpstreamFailure(this.name, 'protocol', 'blob response has no Content-Length');
    }
    // A 200 to a range request restarts at byte 0.
    return { stream: res.body, start: 0, size: length };
  }

  async listTags(repository: string): Promise<string[]> {
    const res = await this.send('GET', 'tags', repository, 'tags/list', {});
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { upstream: this.name, repository });
    }
    const body = (await res.body.json().catch(() => undefined)) as { tags?: unknown } | undefined;
    return Array.isArray(body?.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : [];
  }

  /** Proves the upstream answers and accepts our credential for `repository` (GET /v2/ and a token). */
  async check(repository: string): Promise<void> {
    const res = await this.send('HEAD', 'manifest', repository, 'manifests/latest', { accept: ACCEPT_MANIFESTS });
    await res.body.dump();
  }

  /**
   * The identity quota is tracked under. A rule has at most one credential, so the rule and whether it
   * authenticates suffice, and no user name reaches logs or metric labels.
   */
  async identity(): Promise<string> {
    const credential = await this.options.credential();
    return `${this.name}:${credential ? 'authenticated' : 'anonymous'}`;
  }

  /**
   * Sends one request with auth, redirects and retries. Answers 2xx and 404 are returned; everything
   * else becomes an UpstreamFailure.
   */
  private async send(
    method: 'GET' | 'HEAD',
    kind: RequestKind,
    repository: string,
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    // The slot is held until the response body is consumed or dropped, so blob transfers count too.
    const release = await this.slots.acquire();
    try {
      const res = await this.sendWithRetries({ method, kind, repository, path, headers, ...(signal && { signal }) });
      res.body.once('close', release);
      res.body.once('end', release);
      res.body.once('error', release);
      return res;
    } catch (err) {
      release();
      throw err;
    }
  }

  private async sendWithRetries(request: {
    method: 'GET' | 'HEAD';
    kind: RequestKind;
    repository: string;
    path: string;
    headers: Record<string, string>;
    signal?: AbortSignal;
  }): Promise<Dispatcher.ResponseData> {
    const { method, kind, repository, path, headers, signal } = request;
    const identity = await this.identity();
    const blockedFor = this.options.quota.blocked(identity);
    if (blockedFor !== undefined) {
      throw new UpstreamFailure(this.name, 'rate-limited', 'rate limited', blockedFor);
    }
    const url = new URL(`v2/${repository}/${path}`, this.base);
    const scope = `repository:${repository}:pull`;
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.authorized(method, kind, url, scope, headers, signal);
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        if (signal?.aborted) throw err;
        if (attempt < this.options.retries) {
          await this.backoff(attempt);
          continue;
        }
        throw networkFailure(this.name, err);
      }
      const status = res.statusCode;
      if (kind === 'manifest') this.readRateLimit(identity, res.headers);
      if ((status >= 200 && status < 300) || status === 404) return res;
      await res.body.dump().catch(() => {});
      if (status === 429) {
        const retryAfter = parseRetryAfter(header(res.headers, 'retry-after'), this.now());
        if (retryAfter !== undefined) this.options.quota.block(identity, retryAfter);
        throw new UpstreamFailure(this.name, 'rate-limited', 'rate limited (429)', retryAfter);
      }
      if (status === 401 || status === 403) {
        this.options.credentialRefused?.();
        throw new UpstreamFailure(this.name, 'unauthorized', `refused our credentials (${status})`);
      }
      if (status >= 500 && attempt < this.options.retries) {
        await this.backoff(attempt);
        continue;
      }
      throw new UpstreamFailure(this.name, status >= 500 ? 'server-error' : 'protocol', `answered ${status} to ${method} ${kind}`);
    }
  }

  /** One attempt: with a token when we know the challenge, again after a 401 with a fresh one. */
  private async authorized(
    method: string,
    kind: RequestKind,
    url: URL,
    scope: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    // Learn the auth challenge once from GET /v2/, so the real request goes out authorized the first
    // time and every manifest or blob costs exactly one request upstream.
    this.discovery ??= this.discover().catch((err: unknown) => {
      this.discovery = undefined;
      throw err;
    });
    await this.discovery;
    let authorization = this.challenge ? await this.authorization(scope, false) : undefined;
    let res = await this.follow(method, kind, url, headers, authorization, signal);
    if (res.statusCode !== 401) return res;
    const challenge = parseChallenge(res.headers['www-authenticate']);
    await res.body.dump();
    if (!challenge) throw new UpstreamFailure(this.name, 'unauthorized', 'answered 401 without a usable challenge');
    this.challenge = challenge;
    authorization = await this.authorization(scope, true);
    res = await this.follow(method, kind, url, headers, authorization, signal);
    return res;
  }

  private async discover(): Promise<void> {
    const res = await this.follow('GET', 'ping', new URL('v2/', this.base), {}, undefined);
    await res.body.dump();
    if (res.statusCode === 401) this.challenge = parseChallenge(res.headers['www-authenticate']);
  }

  /** The Authorization header for `scope`: Basic from the credential, or a (cached) bearer token. */
  private async authorization(scope: string, refresh: boolean): Promise<string | undefined> {
    const challenge = this.challenge;
    const credential = await this.options.credential();
    if (challenge?.scheme === 'basic') {
      if (!credential) throw new UpstreamFailure(this.name, 'unauthorized', 'requires credentials and this rule has none');
      return `Basic ${Buffer.from(`${credential.username}:${credential.accessToken}`).toString('base64')}`;
    }
    if (challenge?.scheme !== 'bearer') return undefined;
    const key = `${scope}|${credentialFingerprint(credential)}`;
    const cached = this.tokens.get(key);
    if (!refresh && cached && cached.expiresAt > this.now()) return `Bearer ${cached.value}`;
    let pending = this.tokenFetches.get(key);
    if (!pending) {
      pending = this.fetchToken(challenge, scope, credential, key).finally(() => this.tokenFetches.delete(key));
      this.tokenFetches.set(key, pending);
    }
    const token = await pending;
    return token ? `Bearer ${token}` : undefined;
  }

  private async fetchToken(challenge: Challenge, scope: string, credential: Credential | undefined, key: string): Promise<string | undefined> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new UpstreamFailure(this.name, 'protocol', 'token challenge has no valid realm');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.base.protocol === 'http:')) {
      // Never send a credential in the clear because an upstream's challenge asked us to.
      throw new UpstreamFailure(this.name, 'protocol', 'token realm is not HTTPS');
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (credential) {
      headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.accessToken}`).toString('base64')}`;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        dispatcher: this.options.dispatcher,
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
      });
    } catch (err) {
      this.options.onRequest?.({ method: 'GET', kind: 'token', status: 'error' });
      throw networkFailure(this.name, err);
    }
    this.options.onRequest?.({ method: 'GET', kind: 'token', status: res.statusCode });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      if (credential) this.options.credentialRefused?.();
      throw new UpstreamFailure(this.name, 'unauthorized', `token service refused ${credential ? 'our credentials' : 'anonymous access'} (${res.statusCode})`);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamFailure(this.name, res.statusCode >= 500 ? 'server-error' : 'protocol', `token service answered ${res.statusCode}`);
    }
    const body = (await res.body.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new UpstreamFailure(this.name, 'protocol', 'token service answered without a token');
    // The spec's default lifetime is 60 s; renew a little early.
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    this.tokens.set(key, { value: token, expiresAt: this.now() + Math.max(1, lifetime - 10) * 1000 });
    return token;
  }

  /** Follows redirects; the registry's Authorization goes to the registry's own origin only. */
  private async follow(
    method: string,
    kind: RequestKind,
    start: URL,
    headers: Record<string, string>,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.base.origin;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: method as 'GET' | 'HEAD',
          headers: { ...headers, ...(authorization && sameOrigin && { authorization }) },
          dispatcher: this.options.dispatcher,
          headersTimeout: this.options.headersTimeoutMs,
          bodyTimeout: this.options.bodyTimeoutMs,
          ...(signal && { signal }),
        });
      } catch (err) {
        this.options.onRequest?.({ method, kind, status: 'error' });
        throw err;
      }
      this.options.onRequest?.({ method, kind, status: res.statusCode });
      const location = header(res.headers, 'location');
      if (res.statusCode < 300 || res.statusCode >= 400 || !location) return res;
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new UpstreamFailure(this.name, 'protocol', 'too many redirects');
      url = new URL(location, url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UpstreamFailure(this.name, 'protocol', 'redirect to a non-HTTP URL');
    }
  }

  private readRateLimit(identity: string, headers: Dispatcher.ResponseData['headers']): void {
    const reading = parseRateLimit(header(headers, 'ratelimit-limit'), header(headers, 'ratelimit-remaining'), this.now());
    if (reading) this.options.quota.record(identity, reading);
  }

  private async backoff(attempt: number): Promise<void> {
    // Full jitter: spreads retries of many waiting clients.
    const cap = this.options.retryBaseDelayMs * 2 ** attempt;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
  }
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** Tokens are cached per credential, so a rotated secret never reuses the old one's tokens. */
