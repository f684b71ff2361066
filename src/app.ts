import type { ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import { Agent } from 'undici';
import { BlobFills } from './cache/blob-fill.ts';
import { LocalRepositoryNames, mirroredName } from './cache/mirror.ts';
import { Evictor } from './cache/eviction.ts';
import { PullThroughRegistry } from './cache/pull-through-registry.ts';
import { ruleFromRecord, RuleSet, type CacheRule } from './cache/rules.ts';
import { seedFromConfig } from './cache/seed.ts';
import { TemplateResolver } from './cache/templates.ts';
import type { Config } from './config/schema.ts';
import { Metrics } from './metrics.ts';
import { LifecycleRunner } from './policy/lifecycle-runner.ts';
import { AccessControl } from './auth/access-control.ts';
import { RegistryAuth } from './auth/registry-auth.ts';
import { tokenSigningKey } from './auth/signing-key.ts';
import { ADMIN_POLICY } from './cli/identity-commands.ts';
import { repositoryArn } from './ecr/context.ts';
import { IdentityService } from './auth/identities.ts';
import { createEcrApi } from './ecr/api.ts';
import { UpstreamFailure } from './upstream/failure.ts';
import { createOciApi } from './oci/api.ts';
import { LocalRegistry } from './registry/local-registry.ts';
import { BlobLocks } from './registry/blob-locks.ts';
import { GarbageCollector } from './registry/garbage-collector.ts';
import { CredentialStore } from './secrets/credentials.ts';
import { ecrCredential } from './upstream/ecr-credential.ts';
import { requestId, startHttpServer, type RequestHandler } from './server/http-server.ts';
import { openStores } from './stores.ts';
import { UpstreamClient } from './upstream/client.ts';
import { QuotaTracker } from './upstream/quota.ts';

export interface App {
  url: string;
  evictor: Evictor;
  gc: GarbageCollector;
  lifecycle: LifecycleRunner;
  identities: IdentityService;
  registry: PullThroughRegistry;
  local: LocalRegistry;
  metrics: Metrics;
  log: Logger;
  /** Re-reads cache rules from the store (after the API or a seed changed them). */
  reloadRules(): Promise<void>;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Defaults to a pino logger on stdout at the configured level. */
  log?: Logger;
  /** Wall clock, injectable so tests never sleep. */
  now?: () => Date;
}

/** The composition root: the only place that chooses concrete drivers. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? pino({ level: config.log.level, base: undefined });
  const now = options.now ?? (() => new Date());
  const { directory, blobs, metadata, box } = await openStores(config);
  const metrics = new Metrics();
  const credentials = new CredentialStore(metadata.secrets, box, now);
  const identities = new IdentityService(metadata.identities, box, now);
  await seedFromConfig(config, metadata, credentials, log, now());

  const localNames = new LocalRepositoryNames(async (name) => (await metadata.repositories.get(name)) !== undefined);
  const locks = new BlobLocks(metadata.locks);
  const local = new LocalRegistry({
    blobs,
    metadata,
    locks,
    onRepositoryWrite: (name) => localNames.forget(name),
    manifestCacheBytes: config.cache.manifestMemory,
    pullFlushIntervalMs: config.cache.pullTimeFlushInterval,
    now,
    onBackgroundError: (err) => log.error({ err }, 'failed to record pull times'),
  });

  const pull = config.pullThrough;
  const dispatcher = new Agent({ connections: pull.concurrency, keepAliveTimeout: 30_000 });
  const quota = new QuotaTracker(() => now().getTime());
  let rules = new RuleSet([]);
  /** Upstream clients by rule prefix, with the rule they were made for: kept while the rule is unchanged. */
  const upstreams = new Map<string, { key: string; client: UpstreamClient }>();
  const clientKey = (rule: CacheRule) => JSON.stringify([rule.upstreamUrl, rule.kind, rule.credentialSecret, rule.concurrency, rule.region]);
  const reloadRules = async () => {
    const records = await metadata.cacheRules.list();
    rules = new RuleSet(records.map((r) => ruleFromRecord(r, { freshnessMs: pull.freshness, concurrency: pull.concurrency })));
    for (const [prefix, entry] of upstreams) {
      const rule = rules.get(prefix);
      if (!rule || clientKey(rule) !== entry.key) upstreams.delete(prefix);
    }
  };
  await reloadRules();
  // Rules changed elsewhere (cistern apply, another instance's API) take effect within this interval.
  const ruleTimer = setInterval(() => void reloadRules().catch((err: unknown) => log.error({ err }, 'reloading cache rules failed')), 15_000);
  ruleTimer.unref();
  const upstreamFor = (prefix: string): UpstreamClient => {
    let client = upstreams.get(prefix)?.client;
    if (!client) {
      const rule = rules.get(prefix);
      if (!rule) throw new Error(`no cache rule ${prefix}`);
      const secret = rule.credentialSecret;
      const stored = async () => (secret ? credentials.get(secret) : undefined);
      // An ECR rule's access key is traded for a registry password; other rules use theirs as it is.
      const ecr =
        rule.kind === 'ecr'
          ? ecrCredential({
              name: prefix,
              registryUrl: rule.upstreamUrl,
              ...(rule.region && { region: rule.region }),
              credential: stored,
              dispatcher,
              timeoutMs: pull.headersTimeout,
              now: () => now().getTime(),
            })
          : undefined;
      client = new UpstreamClient({
        name: prefix,
        url: rule.upstreamUrl,
        credential: ecr?.credential ?? stored,
        ...(ecr && { credentialRefused: ecr.refused }),
        dispatcher,
        quota,
        headersTimeoutMs: pull.headersTimeout,
        bodyTimeoutMs: pull.bodyTimeout,
        retries: pull.retries,
        retryBaseDelayMs: pull.retryBaseDelay,
        maxManifestBytes: config.limits.maxManifestSize,
        concurrency: rule.concurrency,
        now: () => now().getTime(),
        onRequest: ({ method, kind, status }) => metrics.upstreamRequests.inc({ rule: prefix, method, kind, status: String(status) }),
      });
      upstreams.set(prefix, { key: clientKey(rule), client });
    }
    return client;
  };
  const fills = new BlobFills({
    blobs,
    resumeAttempts: pull.retries + 1,
    onFilled: (_digest, bytes, rule) => metrics.bytesFetched.inc({ rule }, bytes),
  });
  metrics.sources.fillsInFlight = () => fills.inFlight;
  metrics.sources.metadataConnections = () => metadata.connections();
  metrics.sources.rateLimits = () => quota.entries().map(([identity, reading]) => [identity, reading.remaining]);
  const registry = new PullThroughRegistry({
    local,
    blobs,
    metadata,
    rules: () => rules,
    upstream: upstreamFor,
    fills,
    templates: new TemplateResolver(metadata.templates),
    quota,
    quotaReserve: pull.quotaReserve,
    metrics,
    log,
    now,
  });
  // What `cistern lifecycle run`, `cistern apply` or another instance changed in the store must not be
  // served from memory here: forget it, and pick up rule changes at once.
  const stopWatching = metadata.watchExternalChanges((repositories) => {
    if (repositories) {
      for (const name of repositories) {
        localNames.forget(name);
        local.forgetCached(name);
        registry.forgetCached(name);
      }
      return;
    }
    localNames.forget();
    local.forgetCached();
    registry.forgetCached();
    void reloadRules().catch((err: unknown) => log.error({ err }, 'reloading cache rules failed'));
  });

  const accessControl = new AccessControl(config.aws.accountId);
  const auth = config.auth.enabled
    ? await RegistryAuth.create({
        identities,
        access: accessControl,
        anonymous: config.auth.anonymous,
        repositoryArn: (name) => repositoryArn(config.aws, name),
        signingKey: () => tokenSigningKey(metadata, box, now()),
        tokenLifetimeMs: config.auth.tokenLifetime,
        now,
      })
    : undefined;
  if (config.auth.bootstrapAdmin && (await metadata.identities.listUsers()).length === 0) {
    await identities.createUser('admin', [ADMIN_POLICY]);
    const key = await identities.createKey('admin');
    // Printed once, to the terminal only: never through the logger.
    process.stdout.write(`\nCreated user "admin" with full rights. Its access key (shown only now):\n  access key id:     ${key.accessKeyId}\n  secret access key: ${key.secretAccessKey}\nLog in with: skopeo login --tls-verify=false -u ${key.accessKeyId} 127.0.0.1:${config.http.port}\n\n`);
  }
  let publicUrl = config.http.publicUrl ?? '';
  const oci = createOciApi({
    registry,
    ...(auth && { auth }),
    publicUrl: () => publicUrl,
    maxManifestBytes: config.limits.maxManifestSize,
    resolvePullName: (name, query) => mirroredName(name, query.get('ns'), rules, pull.defaultMirror, () => localNames.exists(name)),
    onInternalError: (err, req) => log.error({ err, reqId: requestId(req) }, 'internal error'),
  });
  const lifecycle = new LifecycleRunner({
    metadata,
    registry,
    flushPulls: () => local.flushPulls(),
    log,
    now,
    onExpired: (_repository, count) => metrics.imagesExpired.inc(count),
    onFinished: (at, seconds) => {
      metrics.lifecycleLastRun.set(at.getTime() / 1000);
      metrics.lifecycleLastDuration.set(seconds);
    },
  });
  lifecycle.start(config.lifecycle.interval);
  const gc = new GarbageCollector({
    metadata,
    blobs,
    locks,
    graceMs: config.gc.grace,
    now,
    log,
    onCollected: (report) => {
      metrics.gcBytesReclaimed.inc(report.bytesReclaimed);
      metrics.gcLastDuration.set(report.seconds);
      metrics.gcLastRun.set(now().getTime() / 1000);
    },
  });
  const evictor = new Evictor({
    metadata,
    registry,
    gc,
    rules: () => rules,
    ...(config.storageBudget.maxBytes !== undefined && { maxBytes: config.storageBudget.maxBytes }),
    protectMs: config.storageBudget.protectPulledWithin,
    flushPulls: () => local.flushPulls(),
    now,
    log,
    onEvicted: (rule, count) => metrics.imagesEvicted.inc({ rule }, count),
  });
  metrics.sources.storedBytes = async () => [
    ['', await metadata.blobLinks.storedBytes()],
    ...(await Promise.all(rules.rules.map(async (r): Promise<[string, number]> => [r.prefix, await metadata.blobLinks.storedBytes(r.prefix)]))),
  ];
  let evicting: Promise<unknown> | undefined;
  const evictTimer = setInterval(() => {
    evicting ??= evictor
      .run()
      .catch((err: unknown) => log.error({ err }, 'eviction failed'))
      .finally(() => (evicting = undefined));
  }, config.storageBudget.interval);
  evictTimer.unref();
  let collecting: Promise<unknown> | undefined;
  const gcTimer = setInterval(() => {
    collecting ??= gc
      .run()
      .then(() => local.expireUploads(config.uploads.expireAfter))
      .catch((err: unknown) => log.error({ err }, 'garbage collection failed'))
      .finally(() => (collecting = undefined));
  }, config.gc.interval);
  gcTimer.unref();
  const validateRule = async (prefix: string): Promise<string | undefined> => {
    await reloadRules();
    try {
      await upstreamFor(prefix).check('library/alpine');
      return undefined;
    } catch (err) {
      if (err instanceof UpstreamFailure) return err.message;
      throw err;
    }
  };
  const ecr = createEcrApi({
    aws: config.aws,
    metadata,
    registry,
    local,
    identities,
    credentials,
    accessControl,
    allowedUpstreams: pull.allowedUpstreams,
    reloadRules,
    lifecycle,
    validateRule,
    publicUrl: () => publicUrl,
    now,
    onInternalError: (err, req) => log.error({ err, reqId: requestId(req) }, 'internal error'),
  });
  const metricsEndpoint: RequestHandler = async (_req, res) => {
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body);
  };
  // Probes for load balancers and Kubernetes: alive while the process serves; ready while it can reach
  // its metadata store and is not shutting down. Neither needs credentials nor says more than that.
  let draining = false;
  const probeAnswer = (res: ServerResponse, problem: string | undefined): void => {
    res
      .writeHead(problem ? 503 : 200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
      .end(problem ? `${problem}\n` : 'ok\n');
  };
  const liveness: RequestHandler = async (_req, res) => probeAnswer(res, undefined);
  const readiness: RequestHandler = async (_req, res) => {
    const problem = draining ? 'shutting down' : await within(metadata.ping(), READINESS_TIMEOUT_MS).then(() => undefined, () => 'metadata store unavailable');
    probeAnswer(res, problem);
  };
  const notFound: RequestHandler = async (_req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    log,
    route: (req, { path }) => {
      if (path === '/v2' || path.startsWith('/v2/')) return oci;
      if (path === '/metrics') return metricsEndpoint;
      if (path === '/livez') return liveness;
      if (path === '/readyz') return readiness;
      if (path === '/' && req.headers['x-amz-target']) return ecr;
      return notFound;
    },
    onResponse: ({ path, method, status, bytes, seconds }) => {
      const api = path.startsWith('/v2') ? 'oci' : path === '/metrics' ? 'metrics' : path === '/' ? 'aws' : 'other';
      metrics.requests.inc({ api, method, status: String(status) });
      metrics.requestDuration.observe({ api }, seconds);
      metrics.bytesServed.inc(bytes);
    },
  });

  publicUrl ||= http.url;

  const sweepUploads = () =>
    local
      .expireUploads(config.uploads.expireAfter)
      .then((removed) => removed > 0 && log.info({ removed }, 'expired abandoned uploads'))
      .catch((err: unknown) => log.error({ err }, 'upload expiry failed'));
  void sweepUploads();
  const sweeper = setInterval(sweepUploads, config.uploads.sweepInterval);
  sweeper.unref();

  log.info({ url: http.url, storage: directory, cacheRules: rules.rules.map((r) => r.prefix) }, 'listening');
  return {
    url: http.url,
    evictor,
    gc,
    lifecycle,
    identities,
    registry,
    local,
    metrics,
    log,
    reloadRules,
    async close() {
      draining = true;
      clearInterval(sweeper);
      clearInterval(gcTimer);
      clearInterval(ruleTimer);
      clearInterval(evictTimer);
      stopWatching();
      await evicting;
      await collecting;
      await lifecycle.stop();
      await http.close(config.http.shutdownGrace);
      await registry.settle();
      await local.close();
      await dispatcher.close();
      await metadata.close();
      await blobs.close();
    },
  };
}

const READINESS_TIMEOUT_MS = 2000;

/** `promise`, or a rejection once `ms` have passed (a database that does not answer is not ready). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
