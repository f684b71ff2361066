import { EventEmitter, once } from 'node:events';
import { Readable } from 'node:stream';
import { RegistryError } from '../domain/errors.ts';
import type { Digest } from '../domain/digest.ts';
import type { BlobInfo, BlobStore, ByteRange } from '../storage/blob-store.ts';
import type { BlobResponse } from '../upstream/client.ts';
import { UpstreamFailure } from '../upstream/failure.ts';

/** Opens the upstream blob from byte `start` (a resumed fill asks for the rest with a Range). */
export type BlobSource = (start: number, signal: AbortSignal) => Promise<BlobResponse>;

/**
 * One blob being copied from upstream into the blob store. Bytes are written to an upload as they arrive,
 * and every client reading the blob (the first and any that join) tails that upload, so the fill makes
 * exactly one upstream request, streams to clients while it writes, and owes nothing to any one client:
 * a client that disconnects stops only its own reader.
 */
class Fill extends EventEmitter {
  uploadId: string | undefined;
  /** Bytes readable from the upload so far. */
  written = 0;
  size: number | undefined;
  result: BlobInfo | undefined;
  error: Error | undefined;
  readonly ready: Promise<number>;

  constructor() {
    super();
    this.setMaxListeners(0);
    this.ready = new Promise((resolve, reject) => {
      this.once('sized', resolve);
      this.once('failed', reject);
    });
    // A fill nobody reads yet must not crash the process with an unhandled rejection.
    this.ready.catch(() => {});
  }

  changed(): Promise<unknown> {
    return once(this, 'changed');
  }

  notify(): void {
    this.emit('changed');
  }
}

const TAIL_SLICE = 1 << 20;
/** How long a digest that failed verification is filled verify-first. */
const SUSPECT_MS = 15 * 60_000;

export interface FillOptions {
  blobs: BlobStore;
  /** How many times a fill whose upstream connection fails part-way asks again for the rest. */
  resumeAttempts: number;
  /** `rule` is the cache rule of the reader that started the fill. */
  onFilled?: (digest: Digest, bytes: number, rule: string) => void;
  onFailed?: (digest: Digest, err: Error) => void;
}

export class BlobFills {
  private readonly active = new Map<Digest, Fill>();
  private readonly running = new Set<Promise<void>>();
  /** Digests whose last fill failed verification, until when. */
  private readonly suspects = new Map<Digest, number>();

  constructor(private readonly options: FillOptions) {}

  get inFlight(): number {
    return this.active.size;
  }

  private isSuspect(digest: Digest): boolean {
    const until = this.suspects.get(digest);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.suspects.delete(digest);
    return false;
  }

  /** Waits for fills under way to commit or fail (a reader may finish before its fill commits). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /**
   * Streams `digest`, filling it from `source` unless a fill is already under way, in which case this
   * reader joins it. Resolves once the blob's size is known; `range` resolves against that size.
   */
  async read(
    digest: Digest,
    source: BlobSource,
    options: { rule: string; range?: (size: number) => ByteRange | undefined; signal?: AbortSignal },
  ): Promise<{ size: number; range?: ByteRange; stream: Readable; fill: Promise<BlobInfo> }> {
    let fill = this.active.get(digest);
    if (!fill) {
      fill = new Fill();
      this.active.set(digest, fill);
      const run = this.run(digest, fill, source, options.rule).finally(() => this.running.delete(run));
      this.running.add(run);
    }
    const current = fill;
    const done = new Promise<BlobInfo>((resolve, reject) => {
      if (current.result) return resolve(current.result);
      if (current.error) return reject(current.error);
      current.once('done', resolve);
      current.once('failed', reject);
    });
    done.catch(() => {});
    if (this.isSuspect(digest)) {
      // Upstream sent bad bytes for this digest lately: verify the whole blob before a byte goes out,
      // so a corrupt blob is never streamed twice.
      const blob = await done;
      const range = options.range?.(blob.size);
      const stream = await this.options.blobs.read(digest, { ...(range && { range }), ...(options.signal && { signal: options.signal }) });
      return { size: blob.size, ...(range && { range }), stream, fill: done };
    }
    const size = await fill.ready;
    const range = options.range?.(size);
    const stream = Readable.from(this.tail(digest, fill, range ?? { start: 0, end: size - 1 }, options.signal), { objectMode: false });
    return { size, ...(range && { range }), stream, fill: done };
  }

  private async run(digest: Digest, fill: Fill, source: BlobSource, rule: string): Promise<void> {
    const { blobs } = this.options;
    const abort = new AbortController();
    try {
      fill.uploadId = await blobs.startUpload();
      for (let attempt = 0; ; attempt++) {
        let response: BlobResponse;
        try {
          response = await source(fill.written, abort.signal);
        } catch (err) {
          if (attempt > 0 && err instanceof UpstreamFailure && attempt < this.options.resumeAttempts) continue;
          throw err;
        }
        if (response.start !== fill.written) {
          // Upstream ignored our Range: start over in a fresh upload (content-addressed, so readers
          // already past this point read the same bytes again).
          response.stream.destroy();
          await blobs.cancelUpload(fill.uploadId);
          fill.uploadId = await blobs.startUpload();
          fill.written = 0;
          if (response.start !== 0) throw new UpstreamFailure('upstream', 'protocol', 'range response out of place');
          response = await source(0, abort.signal);
        }
        if (fill.size === undefined) {
          fill.size = response.size;
          fill.emit('sized', response.size);
        } else if (fill.size !== response.size) {
          throw new UpstreamFailure('upstream', 'protocol', 'blob size changed between requests');
        }
        try {
          await blobs.appendUpload(fill.uploadId, response.stream, {
            onProgress: (written) => {
              fill.written = written;
              fill.notify();
            },
          });
        } catch (err) {
          fill.written = await blobs.uploadSize(fill.uploadId);
          if (attempt + 1 < this.options.resumeAttempts && fill.written < fill.size) continue;
          throw new UpstreamFailure('upstream', 'unreachable', `blob transfer broke off at byte ${fill.written}: ${(err as Error).message}`);
        }
        if (fill.written < fill.size) {
          if (attempt + 1 < this.options.resumeAttempts) continue;
          throw new UpstreamFailure('upstream', 'unreachable', `blob transfer ended early at byte ${fill.written} of ${fill.size}`);
        }
        break;
      }
      if (fill.written !== fill.size) throw new UpstreamFailure('upstream', 'corrupt', 'blob is longer than upstream said');
      try {
        fill.result = await blobs.commitUpload(fill.uploadId, digest);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') {
          this.suspects.set(digest, Date.now() + SUSPECT_MS);
          throw new UpstreamFailure('upstream', 'corrupt', 'blob bytes do not match their digest; discarded');
        }
        throw err;
      }
      this.suspects.delete(digest);
      this.options.onFilled?.(digest, fill.result.size, rule);
      fill.emit('done', fill.result);
    } catch (err) {
      fill.error = err as Error;
      abort.abort();
      if (fill.uploadId && !fill.result) await blobs.cancelUpload(fill.uploadId).catch(() => {});
      this.options.onFailed?.(digest, fill.error);
      fill.emit('failed', fill.error);
    } finally {
      this.active.delete(digest);
      fill.notify();
    }
  }

  /** Yields `range` of the blob as the fill makes it available, then from the store once committed. */
  private async *tail(digest: Digest, fill: Fill, range: ByteRange, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const { blobs } = this.options;
    let position = range.start;
    while (position <= range.end) {
      if (fill.error) throw fill.error;
      signal?.throwIfAborted();
      if (fill.result) {
        yield* (await blobs.read(digest, { range: { start: position, end: range.end }, ...(signal && { signal }) })) as AsyncIterable<Buffer>;
        return;
      }
      // Read in slices of at least a MiB (or whatever is left), not once per network packet.
      const ready = fill.written - position;
      if (fill.uploadId && ready > 0 && (ready >= TAIL_SLICE || fill.written === fill.size)) {
        const changed = fill.changed();
        try {
          const end = Math.min(fill.written - 1, range.end);
          for await (const chunk of await blobs.readUpload(fill.uploadId, { start: position, end }, signal)) {
            position += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
        } catch (err) {
          // The upload was committed (renamed) or restarted under us: look again.
          if (!(err instanceof RegistryError && err.code === 'BLOB_UPLOAD_UNKNOWN')) throw err;
          await changed;
        }
        continue;
      }
      await fill.changed();
    }
  }
}
