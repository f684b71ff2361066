/**
 * AWS Signature Version 4 verification for incoming requests (header form only).
 *
 * Cistern's JSON APIs (ECR `AmazonEC2ContainerRegistry_V20150921.*`, Secrets Manager `secretsmanager.*`) are
 * called by the AWS SDK for JavaScript v3 and the AWS CLI with an endpoint override; both sign with
 * `Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request, SignedHeaders=..., Signature=...`.
 * This module recomputes that signature from the request as it arrived and compares it in constant time.
 *
 * Pure: node:crypto only, no HTTP framework. The caller hands over the raw method, path, query string and
 * headers (as node:http gives them) plus the SHA-256 of the exact body bytes.
 *
 * Not supported, on purpose:
 * - Query-string (presigned URL) authentication (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature` in
 *   the query). The SDK and CLI never presign these JSON APIs; such a request is refused, not verified.
 * - `UNSIGNED-PAYLOAD` and streaming (`STREAMING-*`) payload hashes: the JSON APIs always sign the body, so the
 *   canonical request always uses the real body hash. A tampered body therefore fails verification.
 * - SigV4a (`AWS4-ECDSA-P256-SHA256`).
 * - Session tokens are not validated here: `x-amz-security-token` is covered by the signature like any signed
 *   header, and its value is returned to the caller (`sessionToken`) to check if it wants to.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SignedRequest {
  /** HTTP method as received, e.g. `POST`. */
  method: string;
  /** Raw request path as it arrived on the wire (still percent-encoded), without the query. */
  path: string;
  /** Raw query string without the leading `?` (empty string when there is none). */
  query: string;
  /** Lower-case header names, as node:http's `IncomingMessage.headers` gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** Lower-case hex SHA-256 of the exact body bytes. */
  bodySha256Hex: string;
}

export interface VerifyOptions {
  /** The secret access key for an access key id, or undefined when the key is unknown. */
  lookupSecret(accessKeyId: string): Promise<string | undefined>;
  /** The only region accepted in the credential scope, e.g. `us-east-1`. */
  region: string;
  /** Accepted signing names, e.g. `['ecr']` or `['secretsmanager']`. */
  services: readonly string[];
  now: () => Date;
  /** Allowed clock difference either way; default 15 minutes, as AWS. */
  maxSkewMs?: number;
}

export type VerifyErrorCode =
  /** No Authorization header (or a presigned-URL request, which is not supported). */
  | 'MissingAuthenticationToken'
  /** Authorization header or date malformed, parts missing, `host` not signed. */
  | 'IncompleteSignature'
  /** Credential scope wrong: date, region, service or terminator; unsigned/streaming payload. */
  | 'InvalidSignatureException'
  /** Access key id not known. */
  | 'UnrecognizedClientException'
  /** The recomputed signature differs. */
  | 'SignatureDoesNotMatch'
  /** Request date outside the allowed skew. */
  | 'RequestExpired'
  /** `x-amz-content-sha256` differs from the hash of the body that arrived. */
  | 'XAmzContentSHA256Mismatch';

export type VerifyResult =
  | {
      ok: true;
      accessKeyId: string;
      service: string;
      region: string;
      /** The request time the signature covers. */
      signedAt: Date;
      /** `x-amz-security-token` when present (not validated here). */
      sessionToken?: string;
    }
  | {
      ok: false;
      code: VerifyErrorCode;
      message: string;
      /** The `__type` an AWS JSON-protocol service (ECR, Secrets Manager) answers with for this failure. */
      awsErrorType: string;
      /** The HTTP status AWS uses for it. */
      httpStatus: 400 | 403;
    };

type Failure = Extract<VerifyResult, { ok: false }>;

/**
 * AWS JSON services report every signature problem as one of four `__type`s; the SDK's clock-skew correction
 * keys on `InvalidSignatureException` (with the response's `Date` header), so expired requests use it too,
 * as real ECR does ("Signature expired: ... is now earlier than ...").
 */
const AWS_TYPE: Record<VerifyErrorCode, { awsErrorType: string; httpStatus: 400 | 403 }> = {
  MissingAuthenticationToken: { awsErrorType: 'MissingAuthenticationTokenException', httpStatus: 403 },
  IncompleteSignature: { awsErrorType: 'IncompleteSignatureException', httpStatus: 400 },
  InvalidSignatureException: { awsErrorType: 'InvalidSignatureException', httpStatus: 400 },
  UnrecognizedClientException: { awsErrorType: 'UnrecognizedClientException', httpStatus: 403 },
  SignatureDoesNotMatch: { awsErrorType: 'InvalidSignatureException', httpStatus: 400 },
  RequestExpired: { awsErrorType: 'InvalidSignatureException', httpStatus: 400 },
  XAmzContentSHA256Mismatch: { awsErrorType: 'InvalidSignatureException', httpStatus: 400 },
};

function fail(code: VerifyErrorCode, message: string): Failure {
  return { ok: false, code, message, ...AWS_TYPE[code] };
}

export const SIGNATURE_MISMATCH_MESSAGE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
export const UNRECOGNIZED_CLIENT_MESSAGE = 'The security token included in the request is invalid.';

// ---------------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------------

export async function verifySigV4(req: SignedRequest, options: VerifyOptions): Promise<VerifyResult> {
  const presignParams = presignedParamsIn(req.query);
  const rawAuth = req.headers['authorization'];
  if (rawAuth === undefined || rawAuth === '' || (Array.isArray(rawAuth) && rawAuth.length === 0)) {
    return fail(
      'MissingAuthenticationToken',
      presignParams
        ? 'Missing Authentication Token: query-string (presigned) SigV4 authentication is not supported; sign the Authorization header.'
        : 'Missing Authentication Token',
    );
  }
  if (Array.isArray(rawAuth)) {
    if (rawAuth.length > 1) return fail('IncompleteSignature', 'Only one Authorization header may be sent.');
  }
  if (presignParams) {
    return fail(
      'IncompleteSignature',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.',
    );
  }
  const authHeader = headerString(rawAuth);

  // --- Authorization header ---
  const parsed = parseAuthorization(authHeader);
  if (!parsed.ok) return parsed.failure;
  const { accessKeyId, scopeDate, scopeRegion, scopeService, scopeTerminator, signedHeaders, signature } =
    parsed.value;
  if (!signedHeaders.includes('host')) {
    return fail('IncompleteSignature', "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }

  // --- Request date ---
  const amzDate = headerString(req.headers['x-amz-date']);
  const httpDate = headerString(req.headers['date']);
  let requestDate: string; // ISO 8601 basic, YYYYMMDD'T'HHMMSS'Z': the form the string to sign uses
  if (amzDate !== '') {
    if (parseAmzDate(amzDate) === undefined) {
      return fail('IncompleteSignature', `Date must be in ISO-8601 'basic format'. Got '${printable(amzDate)}'.`);
    }
    requestDate = amzDate;
  } else if (httpDate !== '') {
    const ms = Date.parse(httpDate);
    if (Number.isNaN(ms)) {
      return fail('IncompleteSignature', `Date header is not a valid HTTP date. Got '${printable(httpDate)}'.`);
    }
    requestDate = formatAmzDate(new Date(ms));
  } else {
    return fail(
      'IncompleteSignature',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
  }
  const signedAt = parseAmzDate(requestDate)!;
  const now = options.now();
  const skew = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const skewText = `${Math.round(skew / 60000)} min.`;
  if (signedAt.getTime() < now.getTime() - skew) {
    return fail(
      'RequestExpired',
      `Signature expired: ${requestDate} is now earlier than ${formatAmzDate(new Date(now.getTime() - skew))} ` +
        `(${formatAmzDate(now)} - ${skewText})`,
    );
  }
  if (signedAt.getTime() > now.getTime() + skew) {
    return fail(
      'RequestExpired',
      `Signature not yet current: ${requestDate} is still later than ${formatAmzDate(new Date(now.getTime() + skew))} ` +
        `(${formatAmzDate(now)} + ${skewText})`,
    );
  }

  // --- Credential scope ---
  if (scopeDate !== requestDate.slice(0, 8)) {
    return fail(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
        `'${printable(scopeDate)}' != '${requestDate.slice(0, 8)}', from '${requestDate}'.`,
    );
  }
  if (scopeRegion !== options.region) {
    return fail(
      'InvalidSignatureException',
      `Credential should be scoped to a valid region, not '${printable(scopeRegion)}'. Expected '${options.region}'.`,
    );
  }
  if (!options.services.includes(scopeService)) {
    return fail(
      'InvalidSignatureException',
      `Credential should be scoped to correct service: ${options.services.map((s) => `'${s}'`).join(' or ')}.`,
    );
  }
  if (scopeTerminator !== 'aws4_request') {
    return fail(
      'InvalidSignatureException',
      `Credential should be scoped with a valid terminator: 'aws4_request', not '${printable(scopeTerminator)}'.`,
    );
  }

  // --- Access key ---
  const secret = await options.lookupSecret(accessKeyId);
  if (secret === undefined) return fail('UnrecognizedClientException', UNRECOGNIZED_CLIENT_MESSAGE);

  // --- Payload hash: always the real one ---
  const bodyHash = req.bodySha256Hex.toLowerCase();
  const declaredHash = headerString(req.headers['x-amz-content-sha256']);
  if (declaredHash !== '') {
    if (declaredHash === UNSIGNED_PAYLOAD || declaredHash.startsWith('STREAMING-')) {
      return fail(
        'InvalidSignatureException',
        `x-amz-content-sha256 '${printable(declaredHash)}' is not accepted by this API: the payload must be signed.`,
      );
    }
    if (declaredHash.toLowerCase() !== bodyHash) {
      return fail(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
  }

  // --- Recompute and compare ---
  const canonical = buildCanonicalRequest({
    method: req.method,
    path: req.path,
    query: req.query,
    headers: req.headers,
    signedHeaders,
    payloadHash: bodyHash,
  });
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/${scopeTerminator}`;
  const expected = computeSignature(secret, requestDate, scope, canonical);
  if (!constantTimeHexEqual(expected, signature)) return fail('SignatureDoesNotMatch', SIGNATURE_MISMATCH_MESSAGE);

  const sessionToken = headerString(req.headers['x-amz-security-token']);
  return {
    ok: true,
    accessKeyId,
    service: scopeService,
    region: scopeRegion,
    signedAt,
    ...(sessionToken !== '' && { sessionToken }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Authorization header
// ---------------------------------------------------------------------------------------------------------

export interface ParsedAuthorization {
  accessKeyId: string;
  scopeDate: string;
  scopeRegion: string;
  scopeService: string;
  scopeTerminator: string;
  /** Lower-case header names in the order the client listed them. */
  signedHeaders: string[];
  signature: string;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

export function parseAuthorization(
  header: string,
): { ok: true; value: ParsedAuthorization } | { ok: false; failure: Failure } {
  const trimmed = header.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space === -1 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return {
      ok: false,
      failure: fail(
        'IncompleteSignature',
        `Unsupported Authorization algorithm '${printable(algorithm.slice(0, 40))}'; expected '${ALGORITHM}'.`,
      ),
    };
  }
  const params = new Map<string, string>();
  const rest = space === -1 ? '' : trimmed.slice(space + 1);
  for (const part of rest.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      return { ok: false, failure: fail('IncompleteSignature', 'Authorization header has a malformed parameter.') };
    }
    const key = item.slice(0, eq).trim();
    if (params.has(key)) {
      return {
        ok: false,
        failure: fail('IncompleteSignature', `Authorization header has a duplicate '${printable(key)}' parameter.`),
      };
    }
    params.set(key, item.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((k) => !params.get(k));
  if (missing.length > 0) {
    return {
      ok: false,
      failure: fail(
        'IncompleteSignature',
        missing.map((k) => `Authorization header requires '${k}' parameter.`).join(' '),
      ),
    };
  }
  const credential = params.get('Credential')!;
  const parts = credential.split('/');
  if (parts.length !== 5 || parts.some((p) => p === '')) {
    return {
      ok: false,
      failure: fail(
        'IncompleteSignature',
        "Authorization Credential must have the form '<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'.",
      ),
    };
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService, scopeTerminator] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  const signedHeaders = params
    .get('SignedHeaders')!
    .split(';')
    .map((h) => h.trim().toLowerCase());
  if (signedHeaders.some((h) => !HEADER_NAME.test(h)) || new Set(signedHeaders).size !== signedHeaders.length) {
    return { ok: false, failure: fail('IncompleteSignature', 'Authorization SignedHeaders is malformed.') };
  }
  return {
    ok: true,
    value: {
      accessKeyId,
      scopeDate,
      scopeRegion,
      scopeService,
      scopeTerminator,
      signedHeaders,
      signature: params.get('Signature')!,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Canonical request (exported for tests and for anyone who needs to sign, e.g. test clients)
// ---------------------------------------------------------------------------------------------------------

/**
 * RFC 3986 unreserved characters stay; everything else is percent-encoded with upper-case hex.
 * (encodeURIComponent leaves `!'()*`, which SigV4 encodes.)
 */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Canonical URI for non-S3 services, as the AWS SDKs compute it: remove empty and dot segments from the path
 * as it is sent, then URI-encode each segment once more. The raw path is never decoded first, so a `%2F` in a
 * segment becomes `%252F` on both sides (the SDKs' "double encoding").
 */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized =
    `${path.startsWith('/') ? '/' : ''}${segments.join('/')}` + (segments.length > 0 && path.endsWith('/') ? '/' : '');
  return normalized
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/');
}

function decodeComponent(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // malformed escapes: take the bytes as sent; the signature decides
  }
}

/**
 * Canonical query string: each name and value decoded from the wire form and re-encoded per SigV4, pairs sorted
 * by encoded name then by encoded value, `name=value` joined with `&`; a name without `=` gets an empty value.
 */
export function canonicalQueryString(rawQuery: string): string {
  const q = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery;
  if (q === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const piece of q.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq === -1 ? piece : piece.slice(0, eq);
    const value = eq === -1 ? '' : piece.slice(eq + 1);
    pairs.push([uriEncode(decodeComponent(name)), uriEncode(decodeComponent(value))]);
  }
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Trim, collapse runs of spaces/tabs (and any CR/LF) to one space; several values are joined with `,`. */
export function canonicalHeaderValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  const values = Array.isArray(value) ? value : [value];
  return values.map((v) => v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim()).join(',');
}

export interface CanonicalRequestInput {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[] | undefined>;
  /** Lower-case names, in the order they appear in the Authorization header's SignedHeaders. */
  signedHeaders: readonly string[];
  payloadHash: string;
}

export function buildCanonicalRequest(input: CanonicalRequestInput): string {
  const headerLines = input.signedHeaders.map((name) => `${name}:${canonicalHeaderValue(lookupHeader(input.headers, name))}\n`);
  return [
    input.method.toUpperCase(),
    canonicalUri(input.path),
    canonicalQueryString(input.query),
    headerLines.join(''),
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** kSecret = "AWS4" + secret; kDate, kRegion, kService, kSigning = HMAC chain over the scope parts. */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

export function stringToSign(requestDate: string, scope: string, canonicalRequest: string): string {
  return [ALGORITHM, requestDate, scope, sha256Hex(canonicalRequest)].join('\n');
}

/** Hex signature for a canonical request; `scope` is `YYYYMMDD/region/service/aws4_request`. */
export function computeSignature(secret: string, requestDate: string, scope: string, canonicalRequest: string): string {
  const [date = '', region = '', service = ''] = scope.split('/');
  const key = deriveSigningKey(secret, date, region, service);
  return createHmac('sha256', key).update(stringToSign(requestDate, scope, canonicalRequest), 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/** Split a node:http `req.url` (request target) into raw path and raw query. */
export function splitRequestTarget(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** Build a SignedRequest from what node:http gives (method, url, headers) and the body bytes read. */
export function toSignedRequest(
  method: string,
  url: string,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array | undefined,
): SignedRequest {
  const { path, query } = splitRequestTarget(url);
  return { method, path, query, headers, bodySha256Hex: body && body.length > 0 ? sha256Hex(body) : EMPTY_SHA256 };
}

function lookupHeader(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | string[] | undefined {
  if (Object.hasOwn(headers, name)) return headers[name];
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

function headerString(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return (Array.isArray(value) ? (value[0] ?? '') : value).trim();
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function parseAmzDate(value: string): Date | undefined {
  const m = AMZ_DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Reject rollovers such as month 13 or 25:00.
  if (formatAmzDate(date) !== value) return undefined;
  return date;
}

export function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function presignedParamsIn(rawQuery: string): boolean {
  if (rawQuery === '') return false;
  return rawQuery.split('&').some((piece) => {
    const name = decodeComponent(piece.split('=', 1)[0] ?? '').toLowerCase();
    return name === 'x-amz-signature' || name === 'x-amz-credential' || name === 'x-amz-algorithm';
  });
}

function constantTimeHexEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(provided.toLowerCase(), 'utf8');
  // Lengths differ only when the provided value is malformed; the expected length is public (64).
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** For echoing client-supplied scope parts in messages: short and printable. */
function printable(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean;
}

// ---------------------------------------------------------------------------------------------------------
// Signing (Cistern as a client of an AWS JSON API: ECR as an upstream)
// ---------------------------------------------------------------------------------------------------------

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Headers that sign a request with SigV4 (`authorization` and `x-amz-date`), to be sent together with
 * `headers`, every one of which is signed, plus `host`.
 */
export function signRequest(
  request: { method: string; url: URL; headers: Record<string, string>; body: string },
  credentials: SigningCredentials,
  scope: { region: string; service: string },
  now: Date,
): Record<string, string> {
  const amzDate = formatAmzDate(now);
  const headers: Record<string, string> = { ...lowerCaseKeys(request.headers), host: request.url.host, 'x-amz-date': amzDate };
  const signedHeaders = Object.keys(headers).sort();
  const canonical = buildCanonicalRequest({
    method: request.method,
    path: request.url.pathname,
    query: request.url.search.slice(1),
    headers,
    signedHeaders,
    payloadHash: sha256Hex(request.body),
  });
  const credentialScope = `${amzDate.slice(0, 8)}/${scope.region}/${scope.service}/aws4_request`;
  const signature = computeSignature(credentials.secretAccessKey, amzDate, credentialScope, canonical);
  return {
    'x-amz-date': amzDate,
    authorization: `${ALGORITHM} Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`,
  };
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
