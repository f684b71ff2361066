import type { IncomingMessage } from 'node:http';

/**
 * Reads a small request body whole, or returns undefined as soon as it exceeds `limit` bytes (declared or
 * received), so each API can refuse it in its own error shape without buffering the rest.
 */
export async function readBodyWithin(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
