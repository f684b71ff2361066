import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../../src/domain/digest.ts';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite/sqlite-metadata-store.ts';
import { metadataStoreContract } from '../contract/metadata-store.contract.ts';

metadataStoreContract('sqlite :memory:', async () => {
  const store = SqliteMetadataStore.open(':memory:');
  return {
    store,
    async cleanup() {
      await store.close();
    },
  };
});

metadataStoreContract('sqlite file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-sqlite-'));
  // A directory that does not exist yet: open creates it.
  const store = SqliteMetadataStore.open(join(dir, 'nested', 'metadata.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// Beyond the contract: what only a file-backed SQLite database can get wrong.
describe('SqliteMetadataStore specifics', () => {
  it('keeps everything across close and reopen, and migrating again is a no-op', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cistern-sqlite-'));
    try {
      const path = join(dir, 'metadata.db');
      const content = Buffer.from('{"schemaVersion":2}');
      const digest = digestOf(content);
      const layer = digestOf(Buffer.from('layer'));
      const at = new Date('2024-03-01T12:00:00.000Z');

      const first = SqliteMetadataStore.open(path);
      await first.manifests.put({
        repository: 'r',
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        content,
        references: { blobs: [layer], manifests: [] },
        tag: 'latest',
        at,
      });
      await first.blobLinks.link('r', layer, 5, at);
      await first.uploads.create({ id: 'u', repository: 'r', startedAt: at, updatedAt: at });
      await first.close();

      const second = SqliteMetadataStore.open(path);
      try {
        assert.deepEqual(await second.repositories.list({ limit: 10 }), ['r']);
        assert.equal(await second.tags.resolve('r', 'latest'), digest);
        assert.ok((await second.manifests.get('r', digest))?.content.equals(content));
        assert.equal(await second.blobLinks.get('r', layer), 5);
        assert.deepEqual(await second.uploads.get('u'), { id: 'u', repository: 'r', startedAt: at, updatedAt: at });
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tells a watcher about commits from another connection, not about its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cistern-sqlite-'));
    const path = join(dir, 'metadata.db');
    const server = SqliteMetadataStore.open(path);
    const cli = SqliteMetadataStore.open(path);
    let seen = 0;
    const stop = server.watchExternalChanges(() => seen++, 20);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 120));
    try {
      await server.repositories.create('own/write', {}, new Date());
      await settle();
      assert.equal(seen, 0, 'its own commits are not news');
      await cli.repositories.create('other/write', {}, new Date());
      await settle();
      assert.equal(seen, 1);
      await settle();
      assert.equal(seen, 1, 'once per change, not on every tick');
    } finally {
      stop();
      await cli.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
