import type { ServerResponse } from 'node:http';
import { RegistryError, type ErrorCode } from '../domain/errors.ts';

interface OciError {
  status: number;
  /** The code on the wire, when it differs from ours: clients know only the spec's codes. */
  wire?: string;
}

/** Every domain error code as the OCI Distribution API answers it. */
export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404 },
  BLOB_UPLOAD_INVALID: { status: 400 },
  BLOB_UPLOAD_UNKNOWN: { status: 404 },
  DIGEST_INVALID: { status: 400 },
  MANIFEST_BLOB_UNKNOWN: { status: 400 },
  MANIFEST_INVALID: { status: 400 },
  MANIFEST_UNKNOWN: { status: 404 },
  NAME_INVALID: { status: 400 },
  NAME_UNKNOWN: { status: 404 },
  SIZE_INVALID: { status: 400 },
  RANGE_INVALID: { status: 416 },
  TAG_INVALID: { status: 400 },
  UNAUTHORIZED: { status: 401 },
  DENIED: { status: 403 },
  UNSUPPORTED: { status: 415 },
  TOOMANYREQUESTS: { status: 429 },
  PAGINATION_NUMBER_INVALID: { status: 400 },
  PAYLOAD_TOO_LARGE: { status: 413, wire: 'SIZE_INVALID' },
  ROUTE_UNKNOWN: { status: 404, wire: 'UNSUPPORTED' },
  METHOD_NOT_ALLOWED: { status: 405, wire: 'UNSUPPORTED' },
  UPSTREAM_FAILED: { status: 502, wire: 'UNAVAILABLE' },
  UNAVAILABLE: { status: 503 },
  INTERNAL: { status: 500, wire: 'UNKNOWN' },
} as const satisfies Record<ErrorCode, OciError>;

/**
 * Writes `err` in the spec's JSON shape. Anything that is not a RegistryError is a bug or an I/O
 * failure: the client gets a generic 500 and the details go to the log, never to the client.
 */
export function sendError(res: ServerResponse, err: unknown, isHead: boolean): RegistryError {
  const error =
    err instanceof RegistryError ? err : new RegistryError('INTERNAL', 'internal server error');
  if (res.headersSent) {
    res.destroy();
    return error;
  }
  const mapping: OciError = OCI_ERRORS[error.code];
  const body = JSON.stringify({
    errors: [
      {
        code: mapping.wire ?? error.code,
        message: error.message,
        ...(error.detail !== undefined && { detail: error.detail }),
      },
    ],
  });
  if (!res.req.complete) {
    // The request body was not read: closing is cheaper than draining an unwanted upload.
    res.setHeader('Connection', 'close');
  }
  res.writeHead(mapping.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(isHead ? undefined : body);
  return error;
}
