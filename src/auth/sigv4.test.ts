import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Hash } from '@smithy/hash-node';
import {
  buildCanonicalRequest,
  canonicalQueryString,
  canonicalUri,
  computeSignature,
  sha256Hex,
  signRequest,
  toSignedRequest,
  verifySigV4,
  type SignedRequest,
  type VerifyOptions,
  type VerifyResult,
} from './sigv4.ts';

const AKID = 'AKIACISTERNTEST00001';
const SECRET = 'cisternTestSecretKey/0123456789abcdefghijK+';
const AT = new Date('2026-12-03T10:20:30Z');
const BODY = JSON.stringify({ repositoryNames: ['library/alpine'], maxResults: 10 });

const Sha256 = Hash.bind(null, 'sha256');

interface SignOpts {
  body?: string;
  path?: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  region?: string;
  service?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  at?: Date;
  applyChecksum?: boolean;
  unsignableHeaders?: Set<string>;
  target?: string;
}

/** Sign a request exactly as the AWS SDK for JavaScript v3 does (the real @smithy/signature-v4 signer). */
async function sdkSign(opts: SignOpts = {}): Promise<{ headers: Record<string, string>; body: string; url: string }> {
  const body = opts.body ?? BODY;
  const signer = new SignatureV4({
    credentials: opts.credentials ?? { accessKeyId: AKID, secretAccessKey: SECRET },
    region: opts.region ?? 'us-east-1',
    service: opts.service ?? 'ecr',
    sha256: Sha256,
    applyChecksum: opts.applyChecksum ?? false,
  });
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 5000,
    path: opts.path ?? '/',
    query: opts.query ?? {},
    headers: {
      host: '127.0.0.1:5000',
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': opts.target ?? 'AmazonEC2ContainerRegistry_V20150921.DescribeRepositories',
      'content-length': String(Buffer.byteLength(body)),
      'x-amz-user-agent': 'aws-sdk-js/3.0.0',
      'user-agent': 'aws-sdk-js/3.0.0 ua/2.1 os/linux lang/js md/nodejs#20',
      'amz-sdk-invocation-id': '6c1f5b2e-0000-4000-8000-000000000000',
      'amz-sdk-request': 'attempt=1; max=3',
      ...opts.headers,
    },
    body,
  });
  const signed = await signer.sign(request, {
    signingDate: opts.at ?? AT,
    ...(opts.unsignableHeaders && { unsignableHeaders: opts.unsignableHeaders }),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = v;
  const qs = buildQuery(signed.query ?? {});
  return { headers, body, url: `${signed.path}${qs ? `?${qs}` : ''}` };
}

/** Query serialization as @smithy/querystring-builder does it. */
function buildQuery(query: Record<string, string | string[] | null | undefined>): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === null || value === undefined) parts.push(enc(key));
    else if (Array.isArray(value)) for (const v of value) parts.push(`${enc(key)}=${enc(v)}`);
    else parts.push(`${enc(key)}=${enc(value)}`);
  }
  return parts.join('&');
}

function asIncoming(signed: { headers: Record<string, string>; body: string; url: string }): SignedRequest {
  return toSignedRequest('POST', signed.url, { ...signed.headers }, Buffer.from(signed.body));
}

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    lookupSecret: async (id) => (id === AKID ? SECRET : undefined),
    region: 'us-east-1',
    services: ['ecr', 'secretsmanager'],
    now: () => AT,
    ...overrides,
  };
}

/** No failure message may carry the secret or any 64-hex value (the expected signature). */
function assertRejected(result: VerifyResult, code: string, messagePattern?: RegExp): void {
  assert.equal(result.ok, false, `expected rejection with ${code}`);
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  assert.ok(!result.message.includes(SECRET), 'message leaks the secret');
  assert.ok(!/[0-9a-f]{64}/.test(result.message), `message carries a signature-like value: ${result.message}`);
  if (messagePattern) assert.match(result.message, messagePattern);
}

// ---------------------------------------------------------------------------------------------------------
// Accepted
// ---------------------------------------------------------------------------------------------------------

test('a request signed by the real AWS SDK signer (ecr) verifies', async () => {
  const signed = await sdkSign();
  assert.match(signed.headers['authorization']!, /^AWS4-HMAC-SHA256 Credential=AKIACISTERNTEST00001\/20261203\/us-east-1\/ecr\/aws4_request, SignedHeaders=.*host.*, Signature=[0-9a-f]{64}$/);
  const result = await verifySigV4(asIncoming(signed), options());
  assert.deepEqual(result, {
    ok: true,
    accessKeyId: AKID,
    service: 'ecr',
    region: 'us-east-1',
    signedAt: AT,
  });
});

test('secretsmanager signing name verifies when accepted, and x-amz-content-sha256 with the real hash is fine', async () => {
  const signed = await sdkSign({ service: 'secretsmanager', target: 'secretsmanager.GetSecretValue', applyChecksum: true });
  assert.equal(signed.headers['x-amz-content-sha256'], sha256Hex(signed.body));
  const result = await verifySigV4(asIncoming(signed), options({ services: ['secretsmanager'] }));
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.service, 'secretsmanager');
});

test('an empty body verifies (e3b0... hash)', async () => {
  const signed = await sdkSign({ body: '' });
  assert.equal((await verifySigV4(asIncoming(signed), options())).ok, true);
});

test('clock skew up to 15 minutes either way is accepted', async () => {
  const signed = await sdkSign();
  for (const deltaMin of [-15, -14, 14, 15]) {
    const now = new Date(AT.getTime() + deltaMin * 60_000);
    const result = await verifySigV4(asIncoming(signed), options({ now: () => now }));
    assert.equal(result.ok, true, `skew ${deltaMin} min`);
  }
});

test('a session-token request verifies when x-amz-security-token is signed; the token is returned, not checked', async () => {
  const signed = await sdkSign({
    credentials: { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN//+==' },
  });
  assert.equal(signed.headers['x-amz-security-token'], 'FwoGZXIvYXdzEXAMPLETOKEN//+==');
  assert.match(signed.headers['authorization']!, /SignedHeaders=[^,]*x-amz-security-token/);
  const result = await verifySigV4(asIncoming(signed), options());
  assert.equal(result.ok, true);
  assert.equal(result.ok && result.sessionToken, 'FwoGZXIvYXdzEXAMPLETOKEN//+==');

  const tampered = asIncoming(signed);
  tampered.headers['x-amz-security-token'] = 'SomeOtherToken';
  assertRejected(await verifySigV4(tampered, options()), 'SignatureDoesNotMatch');
});

test('non-trivial path and query, as the SDK encodes them, verify (canonical URI/query match the SDK)', async () => {
  const signed = await sdkSign({
    path: '/v2/library/hello world/a%2Fb/./c/../manifests/',
    query: { b: ['2', '1'], a: 'x y*(z)!', 'ke y': '', A: 'upper' },
    headers: { 'x-amz-meta-spaces': '  several    spaces\there  ' },
  });
  assert.ok(signed.url.includes('?'));
  const result = await verifySigV4(asIncoming(signed), options());
  assert.equal(result.ok, true, !result.ok ? result.message : '');
});

test('canonical URI and query helpers follow the SigV4 rules', () => {
  assert.equal(canonicalUri(''), '/');
  assert.equal(canonicalUri('/'), '/');
  assert.equal(canonicalUri('/a b/c'), '/a%20b/c');
  assert.equal(canonicalUri('/a%20b'), '/a%2520b', 'the raw path is encoded again, never decoded first');
  assert.equal(canonicalUri('//a/./b/../c/'), '/a/c/');
  assert.equal(canonicalQueryString(''), '');
  assert.equal(canonicalQueryString('b=2&a=1&a=0&c'), 'a=0&a=1&b=2&c=');
  assert.equal(canonicalQueryString('x=a%20b&y=%7E'), 'x=a%20b&y=~');
});

test('works through a real node:http server (headers exactly as IncomingMessage gives them)', async (t) => {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void verifySigV4(toSignedRequest(req.method ?? '', req.url ?? '/', req.headers, Buffer.concat(chunks)), {
        ...options(),
        now: () => new Date(),
      }).then((result) => {
        res.writeHead(result.ok ? 200 : result.httpStatus, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result.ok ? { ok: true } : { __type: result.awsErrorType, code: result.code }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;

  const send = async (tamper: boolean): Promise<{ status: number; json: Record<string, unknown> }> => {
    const signed = await sdkSign({ at: new Date(), headers: { host: `127.0.0.1:${port}` } });
    const body = tamper ? signed.body.replace('10', '99') : signed.body;
    return new Promise((resolve, reject) => {
      const headers: IncomingHttpHeaders = { ...signed.headers, 'content-length': String(Buffer.byteLength(body)) };
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: signed.url, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };
  assert.deepEqual(await send(false), { status: 200, json: { ok: true } });
  assert.deepEqual(await send(true), {
    status: 400,
    json: { __type: 'InvalidSignatureException', code: 'SignatureDoesNotMatch' },
  });
});

// ---------------------------------------------------------------------------------------------------------
// Rejected
// ---------------------------------------------------------------------------------------------------------

test('tampered body is rejected', async () => {
  const signed = await sdkSign();
  const req = toSignedRequest('POST', signed.url, signed.headers, Buffer.from(signed.body.replace('alpine', 'ubuntu')));
  assertRejected(await verifySigV4(req, options()), 'SignatureDoesNotMatch');
});

test('tampered body with a declared x-amz-content-sha256 is rejected as a hash mismatch', async () => {
  const signed = await sdkSign({ applyChecksum: true });
  const req = toSignedRequest('POST', signed.url, signed.headers, Buffer.from(`${signed.body} `));
  assertRejected(await verifySigV4(req, options()), 'XAmzContentSHA256Mismatch');
});

test('UNSIGNED-PAYLOAD is refused: the JSON APIs require the body to be signed', async () => {
  const signed = await sdkSign({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  assertRejected(await verifySigV4(asIncoming(signed), options()), 'InvalidSignatureException', /must be signed/);
});

test('tampered signed header is rejected', async () => {
  const signed = await sdkSign();
  assert.match(signed.headers['authorization']!, /x-amz-target/);
  const req = asIncoming(signed);
  req.headers['x-amz-target'] = 'AmazonEC2ContainerRegistry_V20150921.DeleteRepository';
  assertRejected(await verifySigV4(req, options()), 'SignatureDoesNotMatch');
});

test('tampered x-amz-date (inside the window) is rejected', async () => {
  const signed = await sdkSign();
  const req = asIncoming(signed);
  req.headers['x-amz-date'] = '20261203T102500Z';
  assertRejected(await verifySigV4(req, options()), 'SignatureDoesNotMatch');
});

test('tampered path or query is rejected', async () => {
  const signed = await sdkSign({ query: { a: '1' } });
  const path = asIncoming(signed);
  path.path = '/other';
  assertRejected(await verifySigV4(path, options()), 'SignatureDoesNotMatch');
  const query = asIncoming(signed);
  query.query = 'a=2';
  assertRejected(await verifySigV4(query, options()), 'SignatureDoesNotMatch');
});

test('wrong secret is rejected', async () => {
  const signed = await sdkSign({ credentials: { accessKeyId: AKID, secretAccessKey: `${SECRET}x` } });
  assertRejected(await verifySigV4(asIncoming(signed), options()), 'SignatureDoesNotMatch', /does not match/);
});

test('unknown access key is rejected with UnrecognizedClientException', async () => {
  const signed = await sdkSign({ credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: SECRET } });
  const result = await verifySigV4(asIncoming(signed), options());
  assertRejected(result, 'UnrecognizedClientException');
  assert.equal(!result.ok && result.message, 'The security token included in the request is invalid.');
  assert.equal(!result.ok && result.awsErrorType, 'UnrecognizedClientException');
});

test('expired and not-yet-current requests (±16 min) are rejected with RequestExpired', async () => {
  const signed = await sdkSign();
  const later = new Date(AT.getTime() + 16 * 60_000);
  const expired = await verifySigV4(asIncoming(signed), options({ now: () => later }));
  assertRejected(
    expired,
    'RequestExpired',
    /^Signature expired: 20261203T102030Z is now earlier than 20261203T102130Z \(20261203T103630Z - 15 min\.\)$/,
  );
  assert.equal(!expired.ok && expired.awsErrorType, 'InvalidSignatureException');

  const earlier = new Date(AT.getTime() - 16 * 60_000);
  assertRejected(
    await verifySigV4(asIncoming(signed), options({ now: () => earlier })),
    'RequestExpired',
    /^Signature not yet current: 20261203T102030Z is still later than 20261203T101930Z/,
  );
});

test('maxSkewMs narrows the window', async () => {
  const signed = await sdkSign();
  const now = new Date(AT.getTime() + 6 * 60_000);
  assertRejected(await verifySigV4(asIncoming(signed), options({ now: () => now, maxSkewMs: 5 * 60_000 })), 'RequestExpired');
});

test('wrong region is rejected', async () => {
  const signed = await sdkSign({ region: 'eu-west-1' });
  assertRejected(await verifySigV4(asIncoming(signed), options()), 'InvalidSignatureException', /region/);
});

test('wrong service is rejected', async () => {
  const signed = await sdkSign({ service: 's3' });
  assertRejected(await verifySigV4(asIncoming(signed), options()), 'InvalidSignatureException', /service/);
  const sm = await sdkSign({ service: 'secretsmanager' });
  assertRejected(await verifySigV4(asIncoming(sm), options({ services: ['ecr'] })), 'InvalidSignatureException');
});

test('credential scope date that differs from x-amz-date is rejected', async () => {
  const signed = await sdkSign();
  const req = asIncoming(signed);
  req.headers['authorization'] = signed.headers['authorization']!.replace('/20261203/', '/20261202/');
  assertRejected(await verifySigV4(req, options()), 'InvalidSignatureException', /Credential scope/);
});

test('missing Authorization is rejected with MissingAuthenticationToken', async () => {
  const signed = await sdkSign();
  const req = asIncoming(signed);
  delete req.headers['authorization'];
  const result = await verifySigV4(req, options());
  assertRejected(result, 'MissingAuthenticationToken');
  assert.equal(!result.ok && result.httpStatus, 403);
});

test('presigned (query-string) requests are not supported', async () => {
  const signed = await sdkSign();
  const req = asIncoming(signed);
  delete req.headers['authorization'];
  req.query = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-Signature=y';
  assertRejected(await verifySigV4(req, options()), 'MissingAuthenticationToken', /presigned/);
});

test('malformed Authorization headers are rejected with IncompleteSignature', async () => {
  const signed = await sdkSign();
  const auth = signed.headers['authorization']!;
  const variants = [
    'Bearer abc',
    'AWS4-HMAC-SHA256',
    auth.replace(/, Signature=[0-9a-f]+/, ''),
    auth.replace(/SignedHeaders=[^,]+, /, ''),
    auth.replace(/Credential=[^,]+, /, ''),
    auth.replace(/Credential=[^,]+/, 'Credential=AKIACISTERNTEST00001/20261203/us-east-1/ecr'),
    auth.replace('Credential=', 'Credential=/'),
    `${auth}, Signature=abc`,
    auth.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256'),
  ];
  for (const authorization of variants) {
    const req = asIncoming(signed);
    req.headers['authorization'] = authorization;
    assertRejected(await verifySigV4(req, options()), 'IncompleteSignature');
  }
  const noSpaces = asIncoming(signed);
  noSpaces.headers['authorization'] = auth.replace(/, /g, ',');
  assert.equal((await verifySigV4(noSpaces, options())).ok, true, 'commas without spaces are accepted');

  const badSig = asIncoming(signed);
  badSig.headers['authorization'] = auth.replace(/Signature=[0-9a-f]+/, 'Signature=zz');
  assertRejected(await verifySigV4(badSig, options()), 'SignatureDoesNotMatch');
});

test('missing or malformed request date is rejected with IncompleteSignature', async () => {
  const signed = await sdkSign();
  const missing = asIncoming(signed);
  delete missing.headers['x-amz-date'];
  assertRejected(await verifySigV4(missing, options()), 'IncompleteSignature', /X-Amz-Date/);
  for (const bad of ['2026-12-03T10:20:30Z', '20261303T102030Z', 'yesterday']) {
    const req = asIncoming(signed);
    req.headers['x-amz-date'] = bad;
    assertRejected(await verifySigV4(req, options()), 'IncompleteSignature', /ISO-8601/);
  }
});

test('host not among SignedHeaders is rejected with IncompleteSignature', async () => {
  const signed = await sdkSign({ unsignableHeaders: new Set(['host']) });
  assert.doesNotMatch(signed.headers['authorization']!, /SignedHeaders=[^,]*\bhost\b/);
  assertRejected(await verifySigV4(asIncoming(signed), options()), 'IncompleteSignature', /'Host'/);
});

test('a throwing secret lookup propagates (caller maps it to a 500)', async () => {
  const signed = await sdkSign();
  await assert.rejects(
    verifySigV4(asIncoming(signed), options({ lookupSecret: async () => Promise.reject(new Error('db down')) })),
    /db down/,
  );
});

// ---------------------------------------------------------------------------------------------------------
// AWS SigV4 test-suite vectors (AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service")
// ---------------------------------------------------------------------------------------------------------

const SUITE_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SUITE_DATE = '20150830T123600Z';
const SUITE_SCOPE = '20150830/us-east-1/service/aws4_request';
const SUITE = [
  { name: 'get-vanilla', method: 'GET', path: '/', query: '', sig: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
  { name: 'post-vanilla', method: 'POST', path: '/', query: '', sig: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
  { name: 'get-vanilla-query-order-key-case', method: 'GET', path: '/', query: 'Param2=value2&Param1=value1', sig: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500' },
  { name: 'post-vanilla-query', method: 'POST', path: '/', query: 'Param1=value1', sig: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
  { name: 'get-space (normalize-path)', method: 'GET', path: '/example space/', query: '', sig: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741' },
  { name: 'get-slash-pointless-dot (normalize-path)', method: 'GET', path: '/./example', query: '', sig: 'ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5' },
] as const;

for (const vector of SUITE) {
  test(`AWS SigV4 test suite: ${vector.name}`, async () => {
    const headers = { host: 'example.amazonaws.com', 'x-amz-date': SUITE_DATE };
    const canonical = buildCanonicalRequest({
      method: vector.method,
      path: vector.path,
      query: vector.query,
      headers,
      signedHeaders: ['host', 'x-amz-date'],
      payloadHash: sha256Hex(''),
    });
    assert.equal(computeSignature(SUITE_SECRET, SUITE_DATE, SUITE_SCOPE, canonical), vector.sig);

    const result = await verifySigV4(
      {
        method: vector.method,
        path: vector.path,
        query: vector.query,
        headers: {
          ...headers,
          authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${SUITE_SCOPE}, SignedHeaders=host;x-amz-date, Signature=${vector.sig}`,
        },
        bodySha256Hex: sha256Hex(''),
      },
      {
        lookupSecret: async (id) => (id === 'AKIDEXAMPLE' ? SUITE_SECRET : undefined),
        region: 'us-east-1',
        services: ['service'],
        now: () => new Date('2015-08-30T12:40:00Z'),
      },
    );
    assert.equal(result.ok, true, !result.ok ? result.message : '');
  });
}

test('get-vanilla canonical request matches the suite text', () => {
  const canonical = buildCanonicalRequest({
    method: 'GET',
    path: '/',
    query: '',
    headers: { host: 'example.amazonaws.com', 'x-amz-date': SUITE_DATE },
    signedHeaders: ['host', 'x-amz-date'],
    payloadHash: sha256Hex(''),
  });
  assert.equal(
    canonical,
    'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  );
});

test('signRequest signs as the AWS SDK does (same headers, date and key give the same Authorization)', async () => {
  const target = 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken';
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target };
  const sdk = await sdkSign({ body: '{}', target, region: 'eu-west-1' });
  // The SDK also signs its own bookkeeping headers (not user-agent); sign exactly the same set here.
  const unsigned = new Set(['authorization', 'x-amz-date', 'host', 'user-agent']);
  const same = Object.fromEntries(Object.entries(sdk.headers).filter(([k]) => !unsigned.has(k)));
  const ours = signRequest(
    { method: 'POST', url: new URL('http://127.0.0.1:5000/'), headers: { ...headers, ...same }, body: '{}' },
    { accessKeyId: AKID, secretAccessKey: SECRET },
    { region: 'eu-west-1', service: 'ecr' },
    AT,
  );
  assert.equal(ours['x-amz-date'], sdk.headers['x-amz-date']);
  assert.equal(ours.authorization, sdk.headers.authorization);
});
