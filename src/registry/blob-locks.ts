/**
 * One lock per blob digest. Garbage collection deletes a blob only while holding its lock, and every path
 * that makes a blob reachable (committing an upload and linking it, mounting) holds it too, so a blob is
 * never deleted between "it exists" and "a repository links it".
 */
export class BlobLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async with<T>(digest: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(digest) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(digest, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(digest) === tail) this.tails.delete(digest);
    }
  }
}
