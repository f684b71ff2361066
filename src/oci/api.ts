import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../domain/errors.ts';
import { parseDigest, type Digest } from '../domain/digest.ts';
import { isIndexMediaType, MediaType } from '../domain/media-types.ts';
import { parseReference, parseRepositoryName, type Reference, type RepositoryName } from '../domain/reference.ts';
import type { ImportGuard, Registry, StoredManifest } from '../registry/registry.ts';
import type { RegistryAuth } from '../auth/registry-auth.ts';
import { createOciAccess, OPEN, type RouteAccess } from './access.ts';
import { sendError } from './errors.ts';
import { accepts, parseContentRange, parsePage, parseRange, readBody } from './request.ts';
import { matchRoute, type Route } from './routes.ts';
import type { RequestTarget } from '../server/http-server.ts';
import { sendFile } from '../server/send-file.ts';
import type { FileBacked } from '../storage/blob-store.ts';

export interface OciApiOptions {
  registry: Registry;
  /** Absent: the registry API is open (tests of the bare registry). */
  auth?: RegistryAuth;
  /** The address clients reach Cistern at, for the token realm. */
  publicUrl: () => string;
  maxManifestBytes: number;
  /**
   * Maps the repository name of a pull (GET or HEAD) to the one it is served under; mirror mode uses it
   * to honour containerd's `ns` parameter and Docker's prefix-less mirror requests.
   */
  resolvePullName?: (name: string, query: URLSearchParams) => Promise<string> | string;
  /** Failures that are not the client's doing: the client sees a generic 500, the operator the cause. */
  onInternalError: (err: unknown, req: IncomingMessage) => void;
}

type Handler = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>;

/**
 * The OCI Distribution API (v1.1) over node:http. Handlers validate every name, reference and digest
 * before the registry sees it, and answer every failure in the spec's error shape.
 */
export function createOciApi(options: OciApiOptions) {
  const { registry } = options;

  const access = options.auth && createOciAccess(options.auth, options.publicUrl);

  const handlers = (route: Route, { guard, mayMount }: RouteAccess): Partial<Record<string, Handler>> => {
    switch (route.kind) {
      case 'base':
        return { GET: async (_req, res) => json(res, 200, {}), HEAD: async (_req, res) => json(res, 200, {}, true) };
      case 'catalog':
        return { GET: (req, res, query) => catalog(req, res, query) };
      case 'tags': {
        const name = parseRepositoryName(route.name);
        return { GET: (_req, res, query) => tags(res, name, query) };
      }
      case 'manifest': {
        const name = parseRepositoryName(route.name);
        const reference = parseReference(route.reference);
        return {
          GET: (req, res) => getManifest(req, res, name, reference, false, guard),
          HEAD: (req, res) => getManifest(req, res, name, reference, true, guard),
          PUT: (req, res) => putManifest(req, res, name, reference),
          DELETE: async (_req, res) => {
            await registry.deleteManifest(name, reference);
            empty(res, 202);
          },
        };
      }
      case 'blob': {
        const name = parseRepositoryName(route.name);
        const digest = parseDigest(route.digest);
        return {
          GET: (req, res) => getBlob(req, res, name, digest, false, guard),
          HEAD: (req, res) => getBlob(req, res, name, digest, true, guard),
          DELETE: async (_req, res) => {
            await registry.deleteBlob(name, digest);
            empty(res, 202);
          },
        };
      }
      case 'uploads': {
        const name = parseRepositoryName(route.name);
        return { POST: (req, res, query) => startUpload(req, res, name, query, mayMount) };
      }
      case 'upload': {
        const name = parseRepositoryName(route.name);
        const id = route.id;
        return {
          GET: async (_req, res) => uploadAccepted(res, name, await registry.uploadStatus(name, id), 204),
          PATCH: (req, res) => patchUpload(req, res, name, id),
          PUT: (req, res, query) => finishUpload(req, res, name, id, query),
          DELETE: async (_req, res) => {
            await registry.cancelUpload(name, id);
            empty(res, 204);
          },
        };
      }
      case 'referrers': {
        const name = parseRepositoryName(route.name);
        const digest = parseDigest(route.digest);
        return { GET: (_req, res, query) => referrers(res, name, digest, query) };
      }
    }
  };

  async function catalog(_req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const page = parsePage(query, 1000, 10000);
    const names = await registry.catalog({ ...page, limit: page.limit + 1 });
    paginate(res, '/v2/_catalog', page.limit, names);
    json(res, 200, { repositories: names.slice(0, page.limit) });
  }

  async function tags(res: ServerResponse, name: RepositoryName, query: URLSearchParams): Promise<void> {
    const page = parsePage(query, 100_000, 100_000);
    const list = await registry.listTags(name, { ...page, limit: page.limit + 1 });
    paginate(res, `/v2/${name}/tags/list`, page.limit, list);
    json(res, 200, { name, tags: list.slice(0, page.limit) });
  }

  async function getManifest(
    req: IncomingMessage,
    res: ServerResponse,
    name: RepositoryName,
    reference: Reference,
    head: boolean,
    guard: ImportGuard | undefined,
  ): Promise<void> {
    const accept = req.headers.accept;
    let manifest = await registry.getManifest(name, reference, { pull: !head, ...(guard && { guard }) });
    if (!accepts(accept, manifest.mediaType)) manifest = await negotiate(name, reference, manifest, accept, head, guard);
    res.writeHead(200, {
      'Content-Type': manifest.mediaType,
      'Content-Length': manifest.content.length,
      'Docker-Content-Digest': manifest.digest,
      ETag: `"${manifest.digest}"`,
    });
    res.end(head ? undefined : manifest.content);
  }

  /**
   * A client that cannot read what is stored: as Distribution does, a tag that names a manifest list
   * is answered with its linux/amd64 image when that is acceptable; anything else is refused.
   */
  async function negotiate(
    name: RepositoryName,
    reference: Reference,
    stored: StoredManifest,
    accept: string | undefined,
    head: boolean,
    guard: ImportGuard | undefined,
  ): Promise<StoredManifest> {
    if (reference.kind === 'tag' && isIndexMediaType(stored.mediaType)) {
      const index = JSON.parse(stored.content.toString('utf8')) as {
        manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
      };
      const child = index.manifests?.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64');
      if (child) {
        const manifest = await registry.getManifest(name, { kind: 'digest', digest: parseDigest(child.digest) }, { pull: !head, ...(guard && { guard }) });
        if (accepts(accept, manifest.mediaType)) return manifest;
      }
    }
    throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', {
      reason: `the manifest is ${stored.mediaType}, which the request's Accept header does not allow`,
    });
  }

  async function putManifest(req: IncomingMessage, res: ServerResponse, name: RepositoryName, reference: Reference): Promise<void> {
    const body = await readBody(req, options.maxManifestBytes);
    const { digest, subject } = await registry.putManifest(name, reference, body, req.headers['content-type']);
    res.writeHead(201, {
      Location: `/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
      'Content-Length': 0,
      ...(subject && { 'OCI-Subject': subject }),
    });
    res.end();
  }

  async function getBlob(req: IncomingMessage, res: ServerResponse, name: RepositoryName, digest: Digest, head: boolean, guard: ImportGuard | undefined): Promise<void> {
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
      'Cache-Control': 'max-age=31536000',
    };
    if (head) {
      const info = await registry.statBlob(name, digest, guard ? { guard } : {});
      res.writeHead(200, { ...headers, 'Content-Length': info.size });
      res.end();
      return;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const rangeHeader = req.headers.range;
    const blob = await registry.readBlob(name, digest, {
      signal: abort.signal,
      ...(guard && { guard }),
      range: (size) => {
        try {
          return parseRange(rangeHeader, size);
        } catch (err) {
          res.setHeader('Content-Range', `bytes */${size}`);
          throw err;
        }
      },
    });
    const { range, size, stream } = blob;
    if (range) {
      res.writeHead(206, {
        ...headers,
        'Content-Length': range.end - range.start + 1,
        'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
      });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': size });
    }
    const file = (stream as FileBacked).file;
    const sent = file
      ? (stream.destroy(), sendFile(res, file.path, file.start, file.end, abort.signal))
      : pipeline(stream, res);
    await sent.catch((err: unknown) => {
      // A client that goes away mid-download is routine, not an error.
      if (abort.signal.aborted || (res.destroyed && isDisconnect(err))) return res.destroy();
      throw err;
    });
  }

  async function startUpload(req: IncomingMessage, res: ServerResponse, name: RepositoryName, query: URLSearchParams, mayMount: boolean): Promise<void> {
    const mount = query.get('mount');
    const from = query.get('from');
    if (mount !== null && from !== null && mayMount) {
      const mounted = await registry.mountBlob(name, parseDigest(mount), parseRepositoryName(from));
      if (mounted) return blobCreated(res, name, mounted.digest);
    }
    const digest = query.get('digest');
    if (digest !== null) {
      // Monolithic upload: the whole blob in this one request.
      const expected = parseDigest(digest);
      const upload = await registry.startUpload(name);
      try {
        await registry.finishUpload(name, upload.id, expected, req);
      } catch (err) {
        await registry.cancelUpload(name, upload.id).catch(() => {});
        throw err;
      }
      return blobCreated(res, name, expected);
    }
    uploadAccepted(res, name, await registry.startUpload(name), 202);
  }

  async function patchUpload(req: IncomingMessage, res: ServerResponse, name: RepositoryName, id: string): Promise<void> {
    const offset = chunkOffset(req);
    try {
      uploadAccepted(res, name, await registry.appendUpload(name, id, req, offset === undefined ? {} : { offset }), 202);
    } catch (err) {
      await describeUploadOnRangeError(err, res, name, id);
      throw err;
    }
  }

  async function finishUpload(
    req: IncomingMessage,
    res: ServerResponse,
    name: RepositoryName,
    id: string,
    query: URLSearchParams,
  ): Promise<void> {
    const digestParam = query.get('digest');
    if (digestParam === null) {
      throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', {
        reason: 'the digest query parameter is required to complete an upload',
      });
    }
    const digest = parseDigest(digestParam);
    const offset = chunkOffset(req);
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    try {
      await registry.finishUpload(name, id, digest, hasBody ? req : undefined, offset === undefined ? {} : { offset });
    } catch (err) {
      await describeUploadOnRangeError(err, res, name, id);
      throw err;
    }
    blobCreated(res, name, digest);
  }

  /** A rejected chunk is answered with where the upload stands, so the client can resume. */
  async function describeUploadOnRangeError(err: unknown, res: ServerResponse, name: RepositoryName, id: string): Promise<void> {
    if (!(err instanceof RegistryError) || err.code !== 'RANGE_INVALID') return;
    const status = await registry.uploadStatus(name, id).catch(() => undefined);
    if (status) setUploadHeaders(res, name, status);
  }

  async function referrers(res: ServerResponse, name: RepositoryName, digest: Digest, query: URLSearchParams): Promise<void> {
    const artifactType = query.get('artifactType');
    let descriptors = await registry.referrers(name, digest);
    if (artifactType !== null) {
      descriptors = descriptors.filter((d) => d.artifactType === artifactType);
      res.setHeader('OCI-Filters-Applied', 'artifactType');
    }
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: descriptors });
    res.writeHead(200, { 'Content-Type': MediaType.OciIndex, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, target: RequestTarget): Promise<void> {
    const method = req.method ?? 'GET';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      if (target.path === '/v2/token' && access) return await access.token(req, res, target.query);
      let route = matchRoute(target.path);
      if (options.resolvePullName && 'name' in route && (method === 'GET' || method === 'HEAD')) {
        route = { ...route, name: await options.resolvePullName(route.name, target.query) };
      }
      const methods = handlers(route, access ? await access.authorize(req, res, route, method) : OPEN);
      const handler = methods[method];
      if (!handler) {
        res.setHeader('Allow', Object.keys(methods).join(', '));
        throw new RegistryError('METHOD_NOT_ALLOWED', `${method} is not supported here`);
      }
      await handler(req, res, target.query);
    } catch (err) {
      const error = sendError(res, err, method === 'HEAD');
      // A lost database (UNAVAILABLE) is logged with its cause, as a bug is.
      if (error.code === 'INTERNAL' || error.code === 'UNAVAILABLE') options.onInternalError(err, req);
    }
  };
}

function chunkOffset(req: IncomingMessage): number | undefined {
  const range = parseContentRange(req.headers['content-range']);
  if (!range) return undefined;
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) !== range.end - range.start + 1) {
    throw new RegistryError('SIZE_INVALID', 'provided length did not match content length', {
      contentRange: req.headers['content-range'],
      contentLength: length,
    });
  }
  return range.start;
}

function setUploadHeaders(res: ServerResponse, name: string, status: { id: string; size: number }): void {
  res.setHeader('Location', `/v2/${name}/blobs/uploads/${status.id}`);
  res.setHeader('Range', `0-${Math.max(0, status.size - 1)}`);
  res.setHeader('Docker-Upload-UUID', status.id);
}

function uploadAccepted(res: ServerResponse, name: string, status: { id: string; size: number }, code: 202 | 204): void {
  setUploadHeaders(res, name, status);
  empty(res, code);
}

function blobCreated(res: ServerResponse, name: string, digest: Digest): void {
  res.writeHead(201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
  res.end();
}

function paginate(res: ServerResponse, path: string, limit: number, items: string[]): void {
  if (items.length > limit && limit > 0) {
    const last = items[limit - 1]!;
    res.setHeader('Link', `<${path}?n=${limit}&last=${encodeURIComponent(last)}>; rel="next"`);
  }
}

function json(res: ServerResponse, status: number, value: unknown, head = false): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

function empty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

function isDisconnect(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ABORT_ERR';
}
