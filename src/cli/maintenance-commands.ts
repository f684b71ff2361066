import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfigFile } from '../config/load.ts';
import { LifecycleRunner } from '../policy/lifecycle-runner.ts';
import { BlobLocks } from '../registry/blob-locks.ts';
import { GarbageCollector } from '../registry/garbage-collector.ts';
import { LocalRegistry } from '../registry/local-registry.ts';
import { openStores } from '../stores.ts';

/**
 * `cistern gc` and `cistern lifecycle run`, against the store directly. A running server on the same
 * store notices their commits within a quarter of a second and forgets what it held in memory.
 */
export function addMaintenanceCommands(program: Command): void {
  program
    .command('gc')
    .description('delete blobs no manifest references (past the grace period) and abandoned uploads')
    .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
    .option('--dry-run', 'report what would be reclaimed; change nothing')
    .action(async (options: { config: string; dryRun?: boolean }) => {
      const config = await loadConfigFile(options.config);
      const stores = await openStores(config);
      try {
        const log = pino({ level: 'warn' });
        const gc = new GarbageCollector({ metadata: stores.metadata, blobs: stores.blobs, locks: new BlobLocks(stores.metadata.locks), graceMs: config.gc.grace, now: () => new Date(), log });
        const report = await gc.run({ dryRun: !!options.dryRun });
        console.log(`${options.dryRun ? 'would reclaim' : 'reclaimed'} ${report.blobsDeleted} blobs, ${report.bytesReclaimed} bytes; ${report.linksRemoved} unused blob links`);
        if (!options.dryRun) {
          const registry = new LocalRegistry({ blobs: stores.blobs, metadata: stores.metadata, locks: new BlobLocks(stores.metadata.locks), manifestCacheBytes: 0, pullFlushIntervalMs: 60_000 });
          const uploads = await registry.expireUploads(config.uploads.expireAfter);
          await registry.close();
          console.log(`removed ${uploads} abandoned uploads`);
        }
      } finally {
        await stores.metadata.close();
      }
    });

  program
    .command('lifecycle')
    .description('lifecycle policies')
    .command('run')
    .description('apply lifecycle policies now')
    .option('-c, --config <file>', 'configuration file (YAML)', 'cistern.yaml')
    .option('-r, --repository <name>', 'only this repository')
    .option('--dry-run', 'report what would expire; change nothing')
    .action(async (options: { config: string; repository?: string; dryRun?: boolean }) => {
      const config = await loadConfigFile(options.config);
      const stores = await openStores(config);
      const log = pino({ level: 'warn' });
      const registry = new LocalRegistry({
        blobs: stores.blobs,
        metadata: stores.metadata,
        locks: new BlobLocks(stores.metadata.locks),
        manifestCacheBytes: 0,
        pullFlushIntervalMs: 60_000,
      });
      try {
        const runner = new LifecycleRunner({ metadata: stores.metadata, registry, flushPulls: async () => {}, log, now: () => new Date() });
        const reports = await runner.run({ ...(options.repository && { repository: options.repository }), dryRun: !!options.dryRun });
        for (const report of reports) {
          for (const image of report.expired) {
            console.log(`${options.dryRun ? 'would expire' : 'expired'} ${report.repository}@${image.digest} [${image.tags.join(', ')}] (rule ${image.appliedRulePriority})`);
          }
        }
        console.log(`${reports.reduce((n, r) => n + r.expired.length, 0)} images ${options.dryRun ? 'would expire' : 'expired'} in ${reports.length} repositories with a policy`);
      } finally {
        await registry.close();
        await stores.metadata.close();
      }
    });
}
