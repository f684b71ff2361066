import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../domain/errors.ts';
import { readBodyWithin } from '../server/read-body.ts';
import type { ByteRange } from '../storage/blob-store.ts';
import type { PageRequest } from '../storage/metadata-store.ts';

/** Reads a small request body (a manifest) whole, refusing more than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const body = await readBodyWithin(req, limit);
  if (!body) throw new RegistryError('PAYLOAD_TOO_LARGE', `manifest exceeds the ${limit}-byte limit`, { limit });
  return body;
}

/** `n` and `last` of the tags and catalog listings. */
export function parsePage(query: URLSearchParams, defaultLimit: number, maxLimit: number): PageRequest {
  const n = query.get('n');
  const last = query.get('last') ?? undefined;
  let limit = defaultLimit;
  if (n !== null) {
    if (!/^\d{1,9}$/.test(n)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
    }
    limit = Math.min(Number(n), maxLimit);
  }
  return { limit, ...(last && { last }) };
}

/**
 * One `bytes=` range, resolved against the blob's size. Returns undefined when there is no Range
 * header; throws RANGE_INVALID for one we cannot satisfy (or several ranges, which we do not serve).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const invalid = () => new RegistryError('RANGE_INVALID', 'invalid content range', { range: header.slice(0, 100), size });
  if (!match || (match[1] === '' && match[2] === '')) throw invalid();
  let start: number;
  let end: number;
  if (match[1] === '') {
    // A suffix: the last N bytes.
    const length = Number(match[2]);
    if (length === 0) throw invalid();
    start = Math.max(0, size - length);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
    if (Number(match[2] || start) < start) throw invalid();
  }
  if (start >= size || end < start) throw invalid();
  return { start, end };
}

/** An upload chunk's `Content-Range: <start>-<end>` (the spec's form; `bytes ` and `/total` tolerated). */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match || Number(match[2]) < Number(match[1])) {
    throw new RegistryError('RANGE_INVALID', 'invalid content range', { contentRange: header.slice(0, 100) });
  }
  return { start: Number(match[1]), end: Number(match[2]) };
}

/** Whether a client's Accept header admits `mediaType`. No header admits everything. */
export function accepts(header: string | undefined, mediaType: string): boolean {
  if (!header) return true;
  for (const part of header.split(',')) {
    const type = part.split(';', 1)[0]!.trim().toLowerCase();
    if (type === mediaType || type === '*/*' || type === 'application/*') return true;
  }
  return false;
}
