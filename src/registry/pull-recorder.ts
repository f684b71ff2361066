import type { Digest } from '../domain/digest.ts';
import type { ManifestMetadata } from '../storage/metadata-store.ts';

/**
 * Remembers the last pull of each manifest in memory and writes them in one batch per interval, so a
 * pull never waits for a database write. Times are coarse by design: lifecycle rules count in days.
 */
export class PullRecorder {
  private pending = new Map<string, { repository: string; digest: Digest; at: Date }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly manifests: ManifestMetadata,
    intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {
    this.timer = setInterval(() => void this.flush().catch(this.onError), intervalMs);
    this.timer.unref();
  }

  record(repository: string, digest: Digest, at: Date): void {
    this.pending.set(`${repository}@${digest}`, { repository, digest, at });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await this.manifests.recordPulls(batch);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
