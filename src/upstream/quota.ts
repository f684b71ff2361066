/** Docker Hub's `ratelimit-*` headers: `100;w=21600` is 100 pulls per 21,600 seconds. */
export interface RateLimitReading {
  limit: number;
  remaining: number;
  windowSeconds: number;
  at: number;
}

export function parseRateLimit(limit: string | undefined, remaining: string | undefined, at: number): RateLimitReading | undefined {
  const l = parsePolicy(limit);
  const r = parsePolicy(remaining);
  if (!l || !r) return undefined;
  return { limit: l.count, remaining: r.count, windowSeconds: r.window ?? l.window ?? 0, at };
}

function parsePolicy(value: string | undefined): { count: number; window?: number } | undefined {
  const match = value && /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(value);
  if (!match) return undefined;
  return { count: Number(match[1]), ...(match[2] && { window: Number(match[2]) }) };
}

/**
 * What each upstream identity has left to spend, read from upstream responses, and when a 429 told us to
 * come back. Pull quota is spent like money: below the reserve, revalidation stops spending it.
 */
export class QuotaTracker {
  private readonly readings = new Map<string, RateLimitReading>();
  private readonly blockedUntil = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  record(identity: string, reading: RateLimitReading): void {
    this.readings.set(identity, reading);
  }

  reading(identity: string): RateLimitReading | undefined {
    const reading = this.readings.get(identity);
    // A reading older than its window says nothing about now.
    if (reading && reading.windowSeconds > 0 && this.now() - reading.at > reading.windowSeconds * 1000) return undefined;
    return reading;
  }

  /** True when fewer than `reserve` pulls remain. No headers means no limit. */
  isLow(identity: string, reserve: number): boolean {
    const reading = this.reading(identity);
    return reading !== undefined && reading.remaining < reserve;
  }

  block(identity: string, retryAfterSeconds: number): void {
    this.blockedUntil.set(identity, this.now() + retryAfterSeconds * 1000);
  }

  /** Seconds until a 429 allows trying again, or undefined when not blocked. */
  blocked(identity: string): number | undefined {
    const until = this.blockedUntil.get(identity);
    if (until === undefined) return undefined;
    const left = until - this.now();
    if (left <= 0) {
      this.blockedUntil.delete(identity);
      return undefined;
    }
    return Math.ceil(left / 1000);
  }

  entries(): [string, RateLimitReading][] {
    return [...this.readings.entries()];
  }
}
