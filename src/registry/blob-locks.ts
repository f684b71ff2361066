import type { LockMetadata } from '../storage/metadata-store.ts';
import { ProcessLocks } from '../storage/metadata/process-locks.ts';

/**
 * One lock per blob digest. Garbage collection deletes a blob only while holding its lock, and every path
 * that makes a blob reachable (committing an upload and linking it, mounting) holds it too, so a blob is
 * never deleted between "it exists" and "a repository links it". Built on the metadata store's locks,
 * they hold across every instance sharing the store.
 */
export class BlobLocks {
  constructor(private readonly locks: LockMetadata = new ProcessLocks()) {}

  with<T>(digest: string, work: () => Promise<T>): Promise<T> {
    return this.locks.with(`blob:${digest}`, work);
  }
}
