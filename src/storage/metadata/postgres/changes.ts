import pg from 'pg';
import { quoteIdentifier } from './database.ts';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * One dedicated connection (not from the pool: it must stay checked out for as long as it listens) that
 * LISTENs on the schema's change channel. The triggers of migration 4 send the writer's application_name,
 * which is this store instance's id on all of its own connections, so its own commits are skipped.
 *
 * A lost connection is made again; since notifications sent meanwhile are gone, `onChange` is then
 * called once, as if something had changed.
 */
export class ChangeListener {
  /** Settles once the first LISTEN is in place (or the listener is stopped). */
  readonly ready: Promise<void>;
  private client: pg.Client | undefined;
  private stopped = false;
  private missedSome = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private settleReady: () => void = () => undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly onChange: (repositories?: string[]) => void,
  ) {
    this.ready = new Promise((resolve) => {
      this.settleReady = resolve;
    });
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.stopped) return;
    const client = new pg.Client(this.config);
    this.client = client;
    // Without an 'error' listener a dropped connection would crash the process.
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (this.stopped || message.channel !== this.channel) return;
      const change = parseChange(message.payload ?? '');
      if (change.instance === this.instanceId) return;
      // Out of pg's protocol parser, so that a throwing callback cannot wedge the connection.
      queueMicrotask(() => this.onChange(change.repositories));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.channel)}`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.stopped || this.client !== client) return;
    this.retryMs = RETRY_MIN_MS;
    this.settleReady();
    if (this.missedSome) {
      this.missedSome = false;
      this.onChange();
    }
  }

  private lost(client: pg.Client): void {
    if (this.stopped || this.client !== client) return;
    this.client = undefined;
    this.missedSome = true;
    client.end().catch(() => undefined);
    this.retryTimer = setTimeout(() => void this.connect(), this.retryMs);
    // Retrying must not keep a process alive that has nothing else to do.
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.settleReady();
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      await client.query(`UNLISTEN ${quoteIdentifier(this.channel)}`);
    } catch {
      // Not connected (yet, or any more): ending it is enough.
    }
    await client.end().catch(() => undefined);
  }
}

/**
 * A notice from the triggers of migration 5: `{"i": writer, "r": [repository, ...]}`, without `r` when the
 * change is not about named repositories (or names too many). Migration 4's notices were the bare writer id.
 */
export function parseChange(payload: string): { instance: string; repositories?: string[] } {
  if (!payload.startsWith('{')) return { instance: payload };
  try {
    const notice = JSON.parse(payload) as { i?: unknown; r?: unknown };
    const instance = typeof notice.i === 'string' ? notice.i : '';
    const named = Array.isArray(notice.r) && notice.r.every((name) => typeof name === 'string');
    return named ? { instance, repositories: notice.r as string[] } : { instance };
  } catch {
    return { instance: '' };
  }
}
