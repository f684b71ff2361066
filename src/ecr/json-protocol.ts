import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegistryError } from '../domain/errors.ts';
import type { Principal } from '../auth/identities.ts';
import { verifySigV4 } from '../auth/sigv4.ts';
import type { RequestHandler } from '../server/http-server.ts';
import { readBodyWithin } from '../server/read-body.ts';
import { AwsError, ECR_ERRORS } from './errors.ts';

export interface CallContext {
  principal: Principal;
}

export type Operation = (input: Record<string, unknown>, context: CallContext) => Promise<unknown>;

/** One AWS service spoken at Cistern's endpoint: its X-Amz-Target prefix, signing name and operations. */
export interface AwsService {
  targetPrefix: string;
  signingName: string;
  operations: Record<string, Operation>;
}

export interface AwsJsonApiOptions {
  services: AwsService[];
  region: string;
  secretFor: (accessKeyId: string) => Promise<string | undefined>;
  principalForKey: (accessKeyId: string) => Promise<Principal | undefined>;
  now: () => Date;
  onInternalError: (err: unknown, req: IncomingMessage) => void;
}

const MAX_BODY = 1 << 20;
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/**
 * AWS's JSON 1.1 protocol: `POST /`, `X-Amz-Target: <prefix>.<Operation>`, a SigV4-signed JSON body, and
 * errors as `{"__type", "message"}`. Every request is authenticated before its operation runs.
 */
export function createAwsJsonApi(options: AwsJsonApiOptions): RequestHandler {
  const byPrefix = new Map(options.services.map((s) => [s.targetPrefix, s]));
  return async (req, res, target) => {
    try {
      if (req.method !== 'POST') throw new AwsError('UnknownOperationException', 'the AWS JSON APIs answer POST / only');
      const [prefix, operationName] = String(req.headers['x-amz-target'] ?? '').split('.', 2);
      const service = prefix ? byPrefix.get(prefix) : undefined;
      const operation = service && operationName ? service.operations[operationName] : undefined;
      const body = await readBody(req);
      if (!service || !operation || !operationName || !Object.hasOwn(service.operations, operationName)) {
        throw new AwsError('UnknownOperationException', `unknown operation ${String(req.headers['x-amz-target'] ?? '(no X-Amz-Target)').slice(0, 120)}`);
      }
      const verified = await verifySigV4(
        {
          method: req.method,
          path: target.path,
          query: target.query.toString(),
          headers: req.headers,
          bodySha256Hex: createHash('sha256').update(body).digest('hex'),
        },
        { lookupSecret: options.secretFor, region: options.region, services: [service.signingName], now: options.now },
      );
      if (!verified.ok) throw new AwsError(verified.awsErrorType, verified.message, verified.httpStatus);
      const principal = await options.principalForKey(verified.accessKeyId);
      if (!principal) throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.', 403);
      let input: unknown;
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw new AwsError('SerializationException', 'the request body is not valid JSON');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new AwsError('SerializationException', 'the request body must be a JSON object');
      }
      const output = await operation(input as Record<string, unknown>, { principal });
      send(res, 200, output ?? {});
    } catch (err) {
      const error = toAwsError(err);
      if (error.status >= 500) options.onInternalError(err, req);
      if (res.headersSent) return void res.destroy();
      if (!req.complete) res.setHeader('Connection', 'close');
      res.setHeader('x-amzn-ErrorType', error.type);
      send(res, error.status, { __type: error.type, message: error.message });
    }
  };
}

function toAwsError(err: unknown): AwsError {
  if (err instanceof AwsError) return err;
  if (err instanceof RegistryError) {
    const type = ECR_ERRORS[err.code];
    return new AwsError(type, err.message, type === 'ServerException' ? 500 : 400);
  }
  return new AwsError('ServerException', 'internal error', 500);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const body = await readBodyWithin(req, MAX_BODY);
  if (!body) throw new AwsError('ValidationException', 'request body too large');
  return body;
}

function send(res: ServerResponse, status: number, value: unknown): void {
  // AWS JSON 1.1 sends timestamps as epoch seconds. A replacer sees Dates already turned into strings by
  // toJSON, so look at the holder's own value.
  const body = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key];
    return raw instanceof Date ? raw.getTime() / 1000 : v;
  });
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
