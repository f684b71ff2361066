import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/domain/digest.ts';
import { isRegistryError } from '../../src/domain/errors.ts';
import { FilesystemBlobStore } from '../../src/storage/blob/filesystem.ts';
import { blobStoreContract, bytesOf } from '../contract/blob-store.contract.ts';

blobStoreContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-fs-blobs-'));
  const store = await FilesystemBlobStore.open(join(dir, 'root'));
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// Beyond the contract: what only a filesystem driver can get wrong.
describe('FilesystemBlobStore specifics', () => {
  async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'cistern-fs-blobs-'));
    try {
      await work(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('a reopened store sees earlier blobs and uploads, and verifies uploads it did not start', async () => {
    await withDir(async (dir) => {
      const root = join(dir, 'root');
      const data = bytesOf('reopen', 100_000);
      const first = await FilesystemBlobStore.open(root);
      const blob = await first.startUpload();
      await first.appendUpload(blob, Readable.from([bytesOf('blob', 10)]));
      await first.commitUpload(blob, digestOf(bytesOf('blob', 10)));
      const good = await first.startUpload();
      await first.appendUpload(good, Readable.from([data.subarray(0, 40_000)]));
      const bad = await first.startUpload();
      await first.appendUpload(bad, Readable.from([data]));
      await first.close();

      const second = await FilesystemBlobStore.open(root);
      assert.deepEqual(await second.stat(digestOf(bytesOf('blob', 10))), { digest: digestOf(bytesOf('blob', 10)), size: 10 });
      assert.equal(await second.uploadSize(good), 40_000);
      assert.equal(await second.appendUpload(good, Readable.from([data.subarray(40_000)])), data.length);
      assert.deepEqual(await second.commitUpload(good, digestOf(data)), { digest: digestOf(data), size: data.length });
      await assert.rejects(second.commitUpload(bad, digestOf(bytesOf('other', data.length))), (err: unknown) => isRegistryError(err) && err.code === 'DIGEST_INVALID');
      await assert.rejects(second.uploadSize(bad), (err: unknown) => isRegistryError(err) && err.code === 'BLOB_UPLOAD_UNKNOWN');
      await second.close();
    });
  });

  it('path-traversal upload ids reach no file outside the uploads directory', async () => {
    await withDir(async (dir) => {
      const root = join(dir, 'root');
      const store = await FilesystemBlobStore.open(root);
      const outside = join(dir, 'outside');
      await writeFile(outside, 'do not touch');
      await writeFile(join(root, 'beside'), 'do not touch either');
      for (const id of ['../../outside', '../beside', `${dir}/outside`, '../blobs', '..', '../../root/beside']) {
        const unknown = (err: unknown) => isRegistryError(err) && err.code === 'BLOB_UPLOAD_UNKNOWN';
        await assert.rejects(store.uploadSize(id), unknown, id);
        await assert.rejects(store.appendUpload(id, Readable.from([Buffer.from('intruder')])), unknown, id);
        await assert.rejects(store.commitUpload(id, digestOf(Buffer.from('do not touch'))), unknown, id);
        await store.cancelUpload(id).catch((err: unknown) => assert.ok(unknown(err), id));
      }
      assert.equal(await readFile(outside, 'utf8'), 'do not touch');
      assert.equal(await readFile(join(root, 'beside'), 'utf8'), 'do not touch either');
      assert.deepEqual((await readdir(root)).sort(), ['beside', 'blobs', 'uploads']);
      assert.deepEqual(await readdir(join(root, 'blobs')), []);
      await store.close();
    });
  });

  it('stray files in the uploads directory are not listed as uploads', async () => {
    await withDir(async (dir) => {
      const root = join(dir, 'root');
      const store = await FilesystemBlobStore.open(root);
      await writeFile(join(root, 'uploads', '.DS_Store'), 'junk');
      const id = await store.startUpload();
      const ids: string[] = [];
      for await (const upload of store.listUploads()) ids.push(upload.id);
      assert.deepEqual(ids, [id]);
      await store.close();
    });
  });
});
