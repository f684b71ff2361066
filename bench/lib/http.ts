// Minimal HTTP client on node:http (no keep-alive pool, no fetch/undici
// surprises around streaming request bodies and Content-Length).
import http from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  /** A Buffer, or a stream (then set Content-Length in headers yourself). */
  body?: Buffer | Readable;
  timeoutMs?: number;
  /** Cap on the buffered response body; larger bodies are drained and truncated. */
  maxBody?: number;
}

export function request(url: string | URL, opts: RequestOptions = {}): Promise<HttpResponse> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const maxBody = opts.maxBody ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (Buffer.isBuffer(opts.body)) headers['Content-Length'] = opts.body.length;
    const req = http.request(
      u,
      { method: opts.method ?? 'GET', headers, agent: false, timeout: opts.timeoutMs ?? 60_000 },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size + c.length <= maxBody) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${u.href} timed out`)));
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Poll `url` until it answers 200, the process dies (isAlive() false) or the
 * deadline passes. Returns the error text on failure, undefined on success.
 */
export async function waitForHttp200(
  url: string,
  timeoutMs: number,
  isAlive: () => boolean,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive()) return `process exited before ${url} answered (${last})`;
    try {
      const res = await request(url, { timeoutMs: 2000 });
      if (res.status === 200) return undefined;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  return `${url} not ready after ${timeoutMs} ms (${last})`;
}
