import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { createOciApi } from './oci/api.ts';
import { LocalRegistry } from './registry/local-registry.ts';
import { requestId, startHttpServer, type RequestHandler } from './server/http-server.ts';
import { FilesystemBlobStore } from './storage/blob/filesystem.ts';
import { SqliteMetadataStore } from './storage/metadata/sqlite/sqlite-metadata-store.ts';

export interface App {
  url: string;
  registry: LocalRegistry;
  log: Logger;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Defaults to a pino logger on stdout at the configured level. */
  log?: Logger;
}

/** The composition root: the only place that chooses concrete drivers. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.log ?? pino({ level: config.log.level, base: undefined });
  const directory = resolve(config.storage.directory);
  const blobs = await FilesystemBlobStore.open(directory);
  const metadata = SqliteMetadataStore.open(join(directory, 'metadata.db'));
  const registry = new LocalRegistry({
    blobs,
    metadata,
    manifestCacheBytes: config.cache.manifestMemory,
    pullFlushIntervalMs: config.cache.pullTimeFlushInterval,
    onBackgroundError: (err) => log.error({ err }, 'failed to record pull times'),
  });

  const oci = createOciApi({
    registry,
    maxManifestBytes: config.limits.maxManifestSize,
    onInternalError: (err, req) => log.error({ err, reqId: requestId(req) }, 'internal error'),
  });
  const notFound: RequestHandler = async (_req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  };
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    log,
    route: (_req, { path }) => (path === '/v2' || path.startsWith('/v2/') ? oci : notFound),
  });

  const sweepUploads = () =>
    registry
      .expireUploads(config.uploads.expireAfter)
      .then((removed) => removed > 0 && log.info({ removed }, 'expired abandoned uploads'))
      .catch((err: unknown) => log.error({ err }, 'upload expiry failed'));
  void sweepUploads();
  const sweeper = setInterval(sweepUploads, config.uploads.sweepInterval);
  sweeper.unref();

  log.info({ url: http.url, storage: directory }, 'listening');
  return {
    url: http.url,
    registry,
    log,
    async close() {
      clearInterval(sweeper);
      await http.close(config.http.shutdownGrace);
      await registry.close();
      await metadata.close();
      await blobs.close();
    },
  };
}
