import type { LockMetadata } from '../metadata-store.ts';

/**
 * Named locks within one process: each name is a queue of promises, so callers of one name run one at a
 * time, in arrival order, and names do not block each other. Enough for a store only one process
 * serves from (SQLite).
 */
export class ProcessLocks implements LockMetadata {
  private readonly tails = new Map<string, Promise<void>>();

  async with<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(name, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}
