/**
 * The one catalogue of error codes Cistern raises. Codes carry no HTTP: each API surface
 * (oci/errors.ts, later ecr/errors.ts) maps every code, and the compiler proves the maps complete.
 */
export const ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'RANGE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'PAGINATION_NUMBER_INVALID',
  'PAYLOAD_TOO_LARGE',
  'ROUTE_UNKNOWN',
  'METHOD_NOT_ALLOWED',
  'UPSTREAM_FAILED',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class RegistryError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra machine-readable context, returned to clients as the spec's `detail`. Never put secrets here. */
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
