import { join, resolve } from 'node:path';
import type { Config } from './config/schema.ts';
import { SecretBox } from './secrets/secret-box.ts';
import { FilesystemBlobStore } from './storage/blob/filesystem.ts';
import type { MetadataStore } from './storage/metadata-store.ts';
import { SqliteMetadataStore } from './storage/metadata/sqlite/sqlite-metadata-store.ts';

/** Opens the configured storage drivers and the secret box: shared by the server and the CLI. */
export async function openStores(config: Config) {
  const directory = resolve(config.storage.directory);
  const blobs = await FilesystemBlobStore.open(directory);
  const settings = config.storage.metadata;
  let metadata: MetadataStore;
  if (settings.driver === 'postgres') {
    // Loaded only when configured: a single instance on SQLite carries no PostgreSQL client.
    const { PostgresMetadataStore } = await import('./storage/metadata/postgres/postgres-metadata-store.ts');
    metadata = await PostgresMetadataStore.open({ url: settings.url, schema: settings.schema, poolSize: settings.poolSize });
  } else {
    metadata = SqliteMetadataStore.open(join(directory, 'metadata.db'));
  }
  const box = await SecretBox.load(config.secrets.keyFile ?? join(directory, 'secret.key'));
  return { directory, blobs, metadata, box };
}
