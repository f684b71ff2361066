import type { Logger } from 'pino';
import type { Digest } from '../domain/digest.ts';
import { deleteImages } from '../registry/delete-images.ts';
import type { Registry } from '../registry/registry.ts';
import type { GarbageCollector } from '../registry/garbage-collector.ts';
import type { ManifestSummary, MetadataStore } from '../storage/metadata-store.ts';
import type { RuleSet } from './rules.ts';

const DAY = 86_400_000;

export interface Eviction {
  repository: string;
  digest: string;
  tags: string[];
  reason: 'unused' | 'rule-budget' | 'store-budget';
}

export interface EvictionReport {
  evicted: Eviction[];
  /** What garbage collection reclaimed after the evictions. */
  bytesReclaimed: number;
}

interface Candidate {
  repository: string;
  rule: string;
  image: ManifestSummary;
  lastUsed: number;
  /** The image's bytes: its manifest and blobs, and those of its platform manifests. */
  bytes: number;
}

export interface EvictorOptions {
  metadata: MetadataStore;
  registry: Registry;
  gc: GarbageCollector;
  rules: () => RuleSet;
  /** The whole store's budget, if any. */
  maxBytes?: number;
  protectMs: number;
  flushPulls: () => Promise<void>;
  now: () => Date;
  log: Logger;
  onEvicted?: (rule: string, count: number) => void;
}

/**
 * Keeps cached content within its budgets, beyond what ECR offers: images nobody pulled for a rule's
 * `evictAfterUnusedDays` go, then, while a rule or the whole store is over its `maxBytes`, the least
 * recently pulled cached image goes. Repositories that were pushed to are never touched, nor any image
 * pulled within the protection window. Bytes come back when garbage collection runs, right after.
 */
export class Evictor {
  constructor(private readonly options: EvictorOptions) {}

  async run(): Promise<EvictionReport> {
    const { metadata, log } = this.options;
    await this.options.flushPulls();
    const now = this.options.now().getTime();
    const protectedAfter = now - this.options.protectMs;
    const rules = this.options.rules();
    const candidates = (await this.candidates()).filter((c) => c.lastUsed < protectedAfter).sort((a, b) => a.lastUsed - b.lastUsed || a.image.digest.localeCompare(b.image.digest));
    const evicted: Eviction[] = [];
    const gone = new Set<Candidate>();
    const evict = async (candidate: Candidate, reason: Eviction['reason']) => {
      gone.add(candidate);
      await deleteImages(this.options.registry, this.options.metadata, candidate.repository, [candidate.image.digest]);
      evicted.push({ repository: candidate.repository, digest: candidate.image.digest, tags: candidate.image.tags, reason });
    };

    for (const candidate of candidates) {
      const days = rules.get(candidate.rule)?.evictAfterUnusedDays;
      if (days !== undefined && candidate.lastUsed < now - days * DAY) await evict(candidate, 'unused');
    }
    for (const rule of rules.rules) {
      if (rule.maxBytes === undefined) continue;
      // Shared layers make freed bytes an estimate; the next run corrects from what the store really holds.
      let usage = await metadata.blobLinks.storedBytes(rule.prefix);
      for (const candidate of candidates) {
        if (usage <= rule.maxBytes) break;
        if (candidate.rule !== rule.prefix || gone.has(candidate)) continue;
        await evict(candidate, 'rule-budget');
        usage -= candidate.bytes;
      }
    }
    if (this.options.maxBytes !== undefined) {
      let usage = await metadata.blobLinks.storedBytes();
      for (const candidate of candidates) {
        if (usage <= this.options.maxBytes) break;
        if (gone.has(candidate)) continue;
        await evict(candidate, 'store-budget');
        usage -= candidate.bytes;
      }
    }
    const reclaimed = evicted.length > 0 ? (await this.options.gc.run()).bytesReclaimed : 0;
    if (evicted.length > 0) {
      log.info({ evicted: evicted.length, bytesReclaimed: reclaimed }, 'evicted cached images');
      const byRule = new Map<string, number>();
      for (const e of evicted) {
        const rule = rules.match(e.repository)?.rule.prefix ?? 'none';
        byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
      }
      for (const [rule, count] of byRule) this.options.onEvicted?.(rule, count);
    }
    return { evicted, bytesReclaimed: reclaimed };
  }

  private async candidates(): Promise<Candidate[]> {
    const { metadata } = this.options;
    const out: Candidate[] = [];
    for (const name of await metadata.repositories.list({ limit: Number.MAX_SAFE_INTEGER })) {
      const repository = await metadata.repositories.get(name);
      if (!repository?.cacheRule) continue;
      const manifests = await metadata.manifests.list(name);
      const byDigest = new Map(manifests.map((m) => [m.digest as string, m]));
      for (const image of manifests) {
        if (image.inIndex) continue;
        const children = image.children.map((d: Digest) => byDigest.get(d)).filter((m): m is ManifestSummary => m !== undefined);
        const lastUsed = Math.max(image.lastPulledAt?.getTime() ?? image.pushedAt.getTime(), ...children.map((c) => c.lastPulledAt?.getTime() ?? 0));
        const bytes = image.size + image.blobBytes + children.reduce((n, c) => n + c.size + c.blobBytes, 0);
        out.push({ repository: name, rule: repository.cacheRule, image, lastUsed, bytes });
      }
    }
    return out;
  }
}
