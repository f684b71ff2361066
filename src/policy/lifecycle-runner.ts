import type { Logger } from 'pino';
import type { Digest } from '../domain/digest.ts';
import { deleteImages } from '../registry/delete-images.ts';
import type { Registry } from '../registry/registry.ts';
import type { ManifestSummary, MetadataStore } from '../storage/metadata-store.ts';
import { evaluateLifecycle, type Decision } from './evaluate.ts';
import { parseLifecyclePolicy } from './lifecycle-policy.ts';

export interface ExpiredImage extends Decision {
  pushedAt: Date;
}

export interface LifecycleReport {
  repository: string;
  expired: ExpiredImage[];
  dryRun: boolean;
}

export interface LifecycleRunnerOptions {
  metadata: MetadataStore;
  /** Deletions go through the composed registry, so caches above the store forget what is expired. */
  registry: Registry;
  /** Writes pending last-pull times, so sinceImagePulled rules see every pull. */
  flushPulls: () => Promise<void>;
  log: Logger;
  now: () => Date;
  onExpired?: (repository: string, count: number) => void;
  onFinished?: (at: Date, seconds: number) => void;
}

/**
 * Runs ECR lifecycle policies: evaluates each repository's policy with the pure evaluator, then expires
 * what it selects. An image is a top-level manifest; an index's platform manifests live and die with it.
 */
export class LifecycleRunner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: LifecycleRunnerOptions) {}

  /** What `policyText` (or the repository's own policy) would expire now; changes nothing. */
  async preview(repository: string, policyText: string): Promise<ExpiredImage[]> {
    await this.options.flushPulls();
    return this.evaluate(policyText, await this.options.metadata.manifests.list(repository));
  }

  async run(options: { repository?: string; dryRun?: boolean } = {}): Promise<LifecycleReport[]> {
    const { metadata } = this.options;
    const started = Date.now();
    await this.options.flushPulls();
    const names = options.repository ? [options.repository] : await metadata.repositories.list({ limit: Number.MAX_SAFE_INTEGER });
    const reports: LifecycleReport[] = [];
    for (const name of names) {
      const policy = (await metadata.repositories.get(name))?.settings?.lifecyclePolicy;
      if (!policy) continue;
      const manifests = await metadata.manifests.list(name);
      const expired = this.evaluate(policy, manifests);
      if (!options.dryRun) {
        await deleteImages(this.options.registry, metadata, name, expired.map((e) => e.digest as Digest));
        // Recorded for GetLifecyclePolicy's lastEvaluatedAt.
        const settings = (await metadata.repositories.get(name))?.settings ?? {};
        await metadata.repositories.updateSettings(name, { ...settings, lifecycleEvaluatedAt: this.options.now().toISOString() });
      }
      if (expired.length > 0) {
        this.options.log.info({ repository: name, expired: expired.map((e) => ({ digest: e.digest, tags: e.tags, rule: e.appliedRulePriority })), dryRun: !!options.dryRun }, 'lifecycle policy expired images');
        if (!options.dryRun) this.options.onExpired?.(name, expired.length);
      }
      reports.push({ repository: name, expired, dryRun: !!options.dryRun });
    }
    if (!options.dryRun) this.options.onFinished?.(this.options.now(), (Date.now() - started) / 1000);
    return reports;
  }

  /** Runs every `intervalMs`; a run still going when the next is due is not doubled. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running ??= this.run()
        .catch((err: unknown) => this.options.log.error({ err }, 'lifecycle run failed'))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private evaluate(policyText: string, manifests: ManifestSummary[]): ExpiredImage[] {
    const images = manifests.filter((m) => !m.inIndex);
    const pushed = new Map(images.map((m) => [m.digest as string, m.pushedAt]));
    const decisions = evaluateLifecycle(
      parseLifecyclePolicy(policyText),
      images.map((m) => ({ digest: m.digest, tags: m.tags, pushedAt: m.pushedAt, lastPulledAt: m.lastPulledAt, sizeBytes: m.size + m.blobBytes })),
      this.options.now(),
    );
    return decisions.map((d) => ({ ...d, pushedAt: pushed.get(d.digest)! }));
  }
}
