import type { Logger } from 'pino';
import type { Digest } from '../domain/digest.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { BlobLocks } from './blob-locks.ts';
import { failpoint } from '../failpoints.ts';

export interface GcReport {
  seconds: number;
  linksRemoved: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  dryRun: boolean;
}

export interface GarbageCollectorOptions {
  metadata: MetadataStore;
  blobs: BlobStore;
  locks: BlobLocks;
  /** Blobs written or linked more recently than this are never collected (uploads and fills in flight). */
  graceMs: number;
  now: () => Date;
  log: Logger;
  onCollected?: (report: GcReport) => void;
}

/**
 * Mark and sweep, safe while pushes, pulls and fills go on. Why it never deletes what is in use:
 * - A blob is live while any repository links it or any manifest references it. Every manifest push
 *   needs its blobs linked, and a cached manifest's blobs are linked as they are fetched.
 * - Links nobody references are dropped only once older than the grace period, so a blob pushed just
 *   before its manifest keeps its link until the manifest arrives.
 * - The sweep skips blobs written within the grace period (an upload or fill just committed, not yet
 *   linked), and deletes a blob only while holding its lock after re-checking, under the lock, that it is
 *   still not live. Committing-and-linking and mounting hold the same lock, so nothing can link a blob
 *   between that check and the delete.
 * - Every step is idempotent: a crash mid-sweep leaves at worst garbage that the next run collects.
 */
export class GarbageCollector {
  constructor(private readonly options: GarbageCollectorOptions) {}

  async run(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const { metadata, blobs, locks, log } = this.options;
    const dryRun = !!options.dryRun;
    const cutoff = new Date(this.options.now().getTime() - this.options.graceMs);
    const started = Date.now();
    const report: GcReport = { seconds: 0, linksRemoved: 0, blobsDeleted: 0, bytesReclaimed: 0, dryRun };

    const stale = await metadata.blobLinks.unreferenced(cutoff);
    if (dryRun) report.linksRemoved = stale.length;
    else for (const link of stale) if (await metadata.blobLinks.unlink(link.repository, link.digest)) report.linksRemoved++;

    // Live once stale links are gone: referenced by a manifest, or linked within the grace period.
    const live = await metadata.blobLinks.liveDigests(cutoff);
    for await (const blob of blobs.list()) {
      if (live.has(blob.digest) || blob.modifiedAt >= cutoff) continue;
      if (dryRun) {
        report.blobsDeleted++;
        report.bytesReclaimed += blob.size;
        continue;
      }
      await locks.with(blob.digest, async () => {
        if (await metadata.blobLinks.isLive(blob.digest as Digest)) return;
        if (await blobs.delete(blob.digest)) {
          report.blobsDeleted++;
          report.bytesReclaimed += blob.size;
          failpoint('gc-after-delete');
        }
      });
    }
    report.seconds = (Date.now() - started) / 1000;
    log.info(report, 'garbage collection finished');
    if (!dryRun) this.options.onCollected?.(report);
    return report;
  }
}
