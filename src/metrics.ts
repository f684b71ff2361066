import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionPoolStats } from './storage/metadata-store.ts';

/**
 * Every metric Cistern exports, in one place so names stay consistent. Labels never carry credentials or
 * repository names from untrusted input beyond the cache rule's prefix (bounded cardinality).
 */
export class Metrics {
  readonly registry = new PromRegistry();
  /** Read when metrics are scraped; the composition root points them at the live components. */
  readonly sources: {
    fillsInFlight: () => number;
    rateLimits: () => [string, number][];
    storedBytes: () => Promise<[string, number][]>;
    metadataConnections: () => ConnectionPoolStats[];
  } = {
    fillsInFlight: () => 0,
    rateLimits: () => [],
    storedBytes: async () => [],
    metadataConnections: () => [],
  };

  readonly requests = new Counter({
    name: 'cistern_http_requests_total',
    help: 'HTTP requests by API surface, method and status',
    labelNames: ['api', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'cistern_http_request_duration_seconds',
    help: 'HTTP request duration by API surface',
    labelNames: ['api'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });
  readonly bytesServed = new Counter({
    name: 'cistern_bytes_served_total',
    help: 'Response bytes written to clients',
    registers: [this.registry],
  });
  readonly cacheLookups = new Counter({
    name: 'cistern_cache_lookups_total',
    help: 'Pull-through cache lookups by rule, object kind and result (hit, miss, revalidated, stale)',
    labelNames: ['rule', 'kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly staleServes = new Counter({
    name: 'cistern_cache_stale_serves_total',
    help: 'Cached content served because the upstream failed or quota was low, by rule and reason',
    labelNames: ['rule', 'reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamRequests = new Counter({
    name: 'cistern_upstream_requests_total',
    help: 'Requests sent to upstream registries by rule, method, kind and status',
    labelNames: ['rule', 'method', 'kind', 'status'] as const,
    registers: [this.registry],
  });
  readonly bytesFetched = new Counter({
    name: 'cistern_upstream_bytes_fetched_total',
    help: 'Blob bytes copied from upstream registries into the store',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });
  readonly fillsInFlight: Gauge = new Gauge({
    name: 'cistern_cache_fills_in_flight',
    help: 'Blob fills from upstream currently under way',
    registers: [this.registry],
    collect: () => this.fillsInFlight.set(this.sources.fillsInFlight()),
  });
  readonly imagesExpired = new Counter({
    name: 'cistern_lifecycle_images_expired_total',
    help: 'Images expired by lifecycle policies',
    registers: [this.registry],
  });
  readonly lifecycleLastRun = new Gauge({
    name: 'cistern_lifecycle_last_run_timestamp_seconds',
    help: 'When the lifecycle runner last finished',
    registers: [this.registry],
  });
  readonly imagesEvicted = new Counter({
    name: 'cistern_cache_images_evicted_total',
    help: 'Cached images evicted for budgets or disuse, by rule',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });
  readonly gcBytesReclaimed = new Counter({
    name: 'cistern_gc_bytes_reclaimed_total',
    help: 'Blob bytes deleted by garbage collection',
    registers: [this.registry],
  });
  readonly gcLastDuration = new Gauge({
    name: 'cistern_gc_last_duration_seconds',
    help: 'How long the last garbage collection took',
    registers: [this.registry],
  });
  readonly lifecycleLastDuration = new Gauge({
    name: 'cistern_lifecycle_last_duration_seconds',
    help: 'How long the last lifecycle run took',
    registers: [this.registry],
  });
  readonly gcLastRun = new Gauge({
    name: 'cistern_gc_last_run_timestamp_seconds',
    help: 'When garbage collection last finished',
    registers: [this.registry],
  });
  readonly rateLimitRemaining: Gauge<"identity"> = new Gauge({
    name: 'cistern_upstream_ratelimit_remaining',
    help: 'Pulls left in the upstream rate-limit window, per upstream identity (rule:user)',
    labelNames: ['identity'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [identity, remaining] of this.sources.rateLimits()) this.rateLimitRemaining.set({ identity }, remaining);
    },
  });

  readonly storedBytes: Gauge<'rule'> = new Gauge({
    name: 'cistern_store_bytes',
    help: 'Bytes of distinct blobs held, per cache rule (rule="" for the whole store)',
    labelNames: ['rule'] as const,
    registers: [this.registry],
    collect: async () => {
      for (const [rule, bytes] of await this.sources.storedBytes()) this.storedBytes.set({ rule }, bytes);
    },
  });

  readonly metadataConnections: Gauge<'pool' | 'state'> = new Gauge({
    name: 'cistern_metadata_connections',
    help: 'Connections of the metadata store by pool and state (total, idle, and callers waiting for one)',
    labelNames: ['pool', 'state'] as const,
    registers: [this.registry],
    collect: () => {
      for (const { pool, total, idle, waiting } of this.sources.metadataConnections()) {
        this.metadataConnections.set({ pool, state: 'total' }, total);
        this.metadataConnections.set({ pool, state: 'idle' }, idle);
        this.metadataConnections.set({ pool, state: 'waiting' }, waiting);
      }
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'cistern_' });
  }
}
