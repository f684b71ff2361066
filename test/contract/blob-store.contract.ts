import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { digestOf, parseDigest, type Digest, type DigestAlgorithm } from '../../src/domain/digest.ts';
import { isRegistryError, type ErrorCode } from '../../src/domain/errors.ts';
import { bytesOf } from '../helpers/oci.ts';

export { bytesOf };
import type { BlobInfo, BlobStore, UploadInfo } from '../../src/storage/blob-store.ts';

/**
 * What a driver's runner hands the contract: a fresh, empty store, and `cleanup`, which must close the
 * store and release everything `open` created (temporary directories, buckets, ...).
 */
export interface BlobStoreHarness {
  store: BlobStore;
  cleanup(): Promise<void>;
}

/**
 * The one contract every BlobStore driver must pass. Each test gets its own fresh store from `open`, so
 * tests may assert on the complete contents of `list()` and `listUploads()`.
 */
export function blobStoreContract(driverName: string, open: () => Promise<BlobStoreHarness>): void {
  describe(`BlobStore contract: ${driverName}`, () => {
    let harness: BlobStoreHarness;
    let store: BlobStore;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    describe('stat, read, delete', () => {
      it('stat of an absent blob is undefined and read of it throws BLOB_UNKNOWN', async () => {
        const absent = digestOf(bytesOf('never stored', 10));
        assert.equal(await store.stat(absent), undefined);
        await expectCode(store.read(absent), 'BLOB_UNKNOWN');
        await expectCode(store.read(absent, { range: { start: 0, end: 0 } }), 'BLOB_UNKNOWN');
        const absent512 = digestOf(bytesOf('never stored', 10), 'sha512');
        assert.equal(await store.stat(absent512), undefined);
        await expectCode(store.read(absent512), 'BLOB_UNKNOWN');
      });

      it('upload → commit makes the blob visible to stat and read, byte for byte', async () => {
        const data = bytesOf('round trip', 10_000);
        const digest = digestOf(data);
        const id = await store.startUpload();
        assert.equal(await store.uploadSize(id), 0);
        assert.equal(await store.appendUpload(id, Readable.from([data])), data.length);
        assert.equal(await store.stat(digest), undefined, 'not visible before commit');
        const info = await store.commitUpload(id, digest);
        assert.deepEqual(info, { digest, size: data.length });
        assert.deepEqual(await store.stat(digest), { digest, size: data.length });
        const read = await collect(await store.read(digest));
        assert.equal(read.length, data.length);
        assert.ok(read.equals(data), 'read returns exactly the committed bytes');
        // A blob can be read more than once.
        assert.ok((await collect(await store.read(digest))).equals(data));
      });

      it('reads inclusive byte ranges: first byte, middle, last byte, whole', async () => {
        const data = bytesOf('ranges', 1000);
        const digest = await putBlob(store, data);
        const cases: [number, number][] = [
          [0, 0],
          [10, 19],
          [1, 998],
          [500, 500],
          [999, 999],
          [990, 999],
          [0, 999],
        ];
        for (const [start, end] of cases) {
          const read = await collect(await store.read(digest, { range: { start, end } }));
          assert.equal(read.length, end - start + 1, `length of ${start}-${end}`);
          assert.ok(read.equals(data.subarray(start, end + 1)), `bytes of ${start}-${end}`);
        }
      });

      it('delete returns true, then false; the blob is gone afterwards', async () => {
        const data = bytesOf('deleted', 100);
        const digest = await putBlob(store, data);
        const other = await putBlob(store, bytesOf('kept', 100));
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.stat(digest), undefined);
        await expectCode(store.read(digest), 'BLOB_UNKNOWN');
        assert.equal(await store.delete(digest), false);
        assert.equal(await store.delete(digestOf(bytesOf('never stored', 1))), false);
        assert.deepEqual(await store.stat(other), { digest: other, size: 100 }, 'other blobs are untouched');
        assert.deepEqual(await listBlobs(store), [{ digest: other, size: 100 }]);
        // The content can be stored again after deletion.
        assert.equal(await putBlob(store, data), digest);
        assert.ok((await collect(await store.read(digest))).equals(data));
      });
    });

    describe('uploads', () => {
      it('startUpload issues distinct ids of empty uploads', async () => {
        const ids = new Set<string>();
        for (let i = 0; i < 5; i++) ids.add(await store.startUpload());
        assert.equal(ids.size, 5);
        for (const id of ids) assert.equal(await store.uploadSize(id), 0);
      });

      it('accumulates several appends, reporting the size after each, then commits', async () => {
        const parts = [bytesOf('part 1', 1), bytesOf('part 2', 4096), Buffer.alloc(0), bytesOf('part 4', 70_000), bytesOf('part 5', 3)];
        const whole = Buffer.concat(parts);
        const id = await store.startUpload();
        let expected = 0;
        for (const part of parts) {
          expected += part.length;
          assert.equal(await store.appendUpload(id, Readable.from([part])), expected);
          assert.equal(await store.uploadSize(id), expected);
        }
        // A source of many small chunks counts the same as one large one.
        const tail = bytesOf('tail', 5000);
        const chunks = Array.from({ length: 50 }, (_, i) => tail.subarray(i * 100, (i + 1) * 100));
        expected += tail.length;
        assert.equal(await store.appendUpload(id, Readable.from(chunks)), expected);
        assert.equal(await store.uploadSize(id), expected);

        const all = Buffer.concat([whole, tail]);
        const digest = digestOf(all);
        assert.deepEqual(await store.commitUpload(id, digest), { digest, size: all.length });
        assert.ok((await collect(await store.read(digest))).equals(all));
        await expectCode(store.uploadSize(id), 'BLOB_UPLOAD_UNKNOWN', 'a committed upload is gone');
      });

      it('commit with the wrong digest throws DIGEST_INVALID, discards the upload and exposes nothing', async () => {
        const data = bytesOf('mismatch', 2048);
        const right = digestOf(data);
        const cases: Digest[] = [
          digestOf(bytesOf('something else', 2048)),
          digestOf(data.subarray(0, data.length - 1)),
          digestOf(data, 'sha512').replace(/.$/, (c) => (c === '0' ? '1' : '0')) as Digest,
          digestOf(bytesOf('something else', 2048), 'sha512'),
        ];
        for (const wrong of cases) {
          const id = await store.startUpload();
          await store.appendUpload(id, Readable.from([data.subarray(0, 1000)]));
          await store.appendUpload(id, Readable.from([data.subarray(1000)]));
          await expectCode(store.commitUpload(id, wrong), 'DIGEST_INVALID', wrong);
          assert.equal(await store.stat(wrong), undefined, `${wrong} not visible`);
          await expectCode(store.read(wrong), 'BLOB_UNKNOWN');
          assert.equal(await store.stat(right), undefined, 'the actual content is not visible either');
          await expectCode(store.read(right), 'BLOB_UNKNOWN');
          await expectCode(store.uploadSize(id), 'BLOB_UPLOAD_UNKNOWN', 'the upload is discarded');
          await expectCode(store.appendUpload(id, Readable.from([Buffer.from('x')])), 'BLOB_UPLOAD_UNKNOWN');
          await expectCode(store.commitUpload(id, right), 'BLOB_UPLOAD_UNKNOWN', 'a discarded upload cannot be retried');
        }
        assert.deepEqual(await listBlobs(store), []);
        assert.deepEqual(await listUploads(store), []);
      });

      it('commits the same content twice from two uploads', async () => {
        const data = bytesOf('twice', 3000);
        const digest = digestOf(data);
        const first = await store.startUpload();
        const second = await store.startUpload();
        await store.appendUpload(first, Readable.from([data]));
        await store.appendUpload(second, Readable.from([data]));
        assert.deepEqual(await store.commitUpload(first, digest), { digest, size: data.length });
        assert.deepEqual(await store.commitUpload(second, digest), { digest, size: data.length });
        assert.deepEqual(await store.stat(digest), { digest, size: data.length });
        assert.ok((await collect(await store.read(digest))).equals(data));
        assert.deepEqual(await listBlobs(store), [{ digest, size: data.length }], 'listed once');
        assert.deepEqual(await listUploads(store), []);
        // And again, once the blob already exists, with a third upload.
        assert.equal(await putBlob(store, data), digest);
        assert.deepEqual(await listBlobs(store), [{ digest, size: data.length }]);
      });

      it('commits with sha512 digests', async () => {
        const data = bytesOf('sha512', 5000);
        const digest = digestOf(data, 'sha512');
        assert.doesNotThrow(() => parseDigest(digest));
        const id = await store.startUpload();
        await store.appendUpload(id, Readable.from([data.subarray(0, 1234)]));
        await store.appendUpload(id, Readable.from([data.subarray(1234)]));
        assert.deepEqual(await store.commitUpload(id, digest), { digest, size: data.length });
        assert.deepEqual(await store.stat(digest), { digest, size: data.length });
        assert.ok((await collect(await store.read(digest))).equals(data));
        assert.ok((await collect(await store.read(digest, { range: { start: 4999, end: 4999 } }))).equals(data.subarray(4999)));
        // The sha256 name of the same bytes is a different blob, not stored.
        assert.equal(await store.stat(digestOf(data)), undefined);
        assert.deepEqual(await listBlobs(store), [{ digest, size: data.length }]);
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.stat(digest), undefined);
      });

      it('reports progress while appending, and readUpload reads what has been appended', async () => {
        const data = bytesOf('progress', 3 * 1024 * 1024 + 17);
        const id = await store.startUpload();
        const sizes: number[] = [];
        const parts = [data.subarray(0, 1024 * 1024), data.subarray(1024 * 1024, 2 * 1024 * 1024), data.subarray(2 * 1024 * 1024)];
        await store.appendUpload(id, Readable.from(parts), { onProgress: (size) => sizes.push(size) });
        assert.ok(sizes.length >= 1);
        assert.ok(sizes.every((size, i) => i === 0 || size > sizes[i - 1]!), 'progress only grows');
        assert.equal(sizes.at(-1), data.length);
        const middle = await collect(await store.readUpload(id, { start: 1000, end: 2_500_000 }));
        assert.ok(middle.equals(data.subarray(1000, 2_500_001)));
        await assert.rejects(store.readUpload('00000000-0000-0000-0000-000000000000', { start: 0, end: 0 }), { code: 'BLOB_UPLOAD_UNKNOWN' });
        await store.cancelUpload(id);
        await assert.rejects(store.readUpload(id, { start: 0, end: 0 }), { code: 'BLOB_UPLOAD_UNKNOWN' });
      });

      it('cancelUpload removes the upload; cancelling it again is harmless', async () => {
        const kept = await store.startUpload();
        await store.appendUpload(kept, Readable.from([bytesOf('kept', 10)]));
        const id = await store.startUpload();
        await store.appendUpload(id, Readable.from([bytesOf('cancelled', 100)]));
        await store.cancelUpload(id);
        await expectCode(store.uploadSize(id), 'BLOB_UPLOAD_UNKNOWN');
        await expectCode(store.appendUpload(id, Readable.from([Buffer.from('x')])), 'BLOB_UPLOAD_UNKNOWN');
        await expectCode(store.commitUpload(id, digestOf(bytesOf('cancelled', 100))), 'BLOB_UPLOAD_UNKNOWN');
        assert.equal(await store.stat(digestOf(bytesOf('cancelled', 100))), undefined);
        // Expiry may cancel an upload whose bytes are already gone (a crash between the two stores).
        await store.cancelUpload(id);
        assert.deepEqual(
          (await listUploads(store)).map((u) => [u.id, u.size]),
          [[kept, 10]],
        );
        assert.equal(await store.uploadSize(kept), 10);
      });

      it('unknown and malformed upload ids throw BLOB_UPLOAD_UNKNOWN and touch nothing', async () => {
        const sentinel = bytesOf('sentinel blob', 777);
        const sentinelDigest = await putBlob(store, sentinel);
        const open = await store.startUpload();
        const openBytes = bytesOf('sentinel upload', 321);
        await store.appendUpload(open, Readable.from([openBytes]));
        const committed = await store.startUpload();
        await store.commitUpload(committed, digestOf(Buffer.alloc(0)));
        const cancelled = await store.startUpload();
        await store.cancelUpload(cancelled);

        const ids = [
          committed,
          cancelled,
          '',
          '.',
          '..',
          '/',
          '../../etc/passwd',
          '/etc/passwd',
          '..\\..\\windows\\win.ini',
          '%2e%2e%2fetc%2fpasswd',
          '../uploads',
          '../blobs',
          `../uploads/${open}`,
          `./${open}`,
          `${open}/`,
          `${open}/../${open}`,
          `${open}\0`,
          `${open} `,
          open.toUpperCase(),
          `${open}x`,
          open.slice(1),
          'nope',
          'x'.repeat(1000),
          '00000000-0000-0000-0000-000000000000',
          '------------------------------------',
        ].filter((id) => id !== open);
        const emptyDigest = digestOf(Buffer.alloc(0));

        for (const id of ids) {
          const label = JSON.stringify(id);
          await expectCode(store.uploadSize(id), 'BLOB_UPLOAD_UNKNOWN', `uploadSize(${label})`);
          await expectCode(store.appendUpload(id, Readable.from([Buffer.from('intruder')])), 'BLOB_UPLOAD_UNKNOWN', `appendUpload(${label})`);
          await expectCode(store.commitUpload(id, digestOf(openBytes)), 'BLOB_UPLOAD_UNKNOWN', `commitUpload(${label})`);
          await expectCode(store.commitUpload(id, sentinelDigest), 'BLOB_UPLOAD_UNKNOWN', `commitUpload(${label}, sentinel)`);
          await expectCode(store.commitUpload(id, emptyDigest), 'BLOB_UPLOAD_UNKNOWN', `commitUpload(${label}, empty)`);
          // Cancelling may be a no-op for an id it does not know, but it must not fail otherwise.
          await store.cancelUpload(id).catch((err: unknown) => {
            assert.ok(isRegistryError(err) && err.code === 'BLOB_UPLOAD_UNKNOWN', `cancelUpload(${label}) threw ${String(err)}`);
          });
        }

        // Nothing was touched.
        assert.equal(await store.uploadSize(open), openBytes.length);
        assert.deepEqual(
          (await listUploads(store)).map((u) => [u.id, u.size]),
          [[open, openBytes.length]],
        );
        assert.deepEqual(await store.stat(sentinelDigest), { digest: sentinelDigest, size: sentinel.length });
        assert.ok((await collect(await store.read(sentinelDigest))).equals(sentinel));
        assert.deepEqual(await listBlobs(store), sortBlobs([
          { digest: sentinelDigest, size: sentinel.length },
          { digest: emptyDigest, size: 0 },
        ]));
        assert.equal(await store.stat(digestOf(openBytes)), undefined);
        // The real upload still works.
        assert.deepEqual(await store.commitUpload(open, digestOf(openBytes)), { digest: digestOf(openBytes), size: openBytes.length });
      });

      it('an append whose source errors part-way keeps exactly the bytes written, and the upload can be resumed', async () => {
        // Chunks large enough that a write can be in flight while later ones are still buffered, and
        // failure at several moments, so the bytes the store saw and the bytes it kept can differ.
        const failures: { name: string; fail: (stream: Readable, error: Error) => void }[] = [
          { name: 'synchronously', fail: (s, e) => s.destroy(e) },
          { name: 'on the next tick', fail: (s, e) => process.nextTick(() => s.destroy(e)) },
          { name: 'on setImmediate', fail: (s, e) => setImmediate(() => s.destroy(e)) },
          { name: 'after 30 ms', fail: (s, e) => setTimeout(() => s.destroy(e), 30) },
        ];
        for (const [index, { name, fail }] of failures.entries()) {
          for (const leading of [0, 1000]) {
            const label = `${name}, after ${leading} bytes`;
            const whole = bytesOf(`interrupted ${index} ${leading}`, leading + 3 * 256 * 1024 + 17);
            const id = await store.startUpload();
            if (leading > 0) assert.equal(await store.appendUpload(id, Readable.from([whole.subarray(0, leading)])), leading);
            const sent = whole.subarray(leading, leading + 3 * 256 * 1024);
            await assert.rejects(store.appendUpload(id, failingSource(sent, 256 * 1024, fail)), `append fails, ${label}`);

            const kept = await store.uploadSize(id);
            assert.ok(Number.isInteger(kept), label);
            assert.ok(kept >= leading && kept <= leading + sent.length, `${label}: kept ${kept} bytes`);
            const listed = (await listUploads(store)).find((u) => u.id === id);
            assert.equal(listed?.size, kept, `${label}: listUploads agrees with uploadSize`);

            // Resume from the reported offset; had the store miscounted, the digest would not match.
            assert.equal(await store.appendUpload(id, Readable.from([whole.subarray(kept)])), whole.length, label);
            const digest = digestOf(whole);
            assert.deepEqual(await store.commitUpload(id, digest), { digest, size: whole.length }, label);
            assert.ok((await collect(await store.read(digest))).equals(whole), label);
          }
        }
      });

      it('an append whose source errors part-way and is then finished with the wrong bytes is rejected', async () => {
        // If a store trusted a running hash that had seen bytes never written, it could accept this.
        const sent = bytesOf('untrusted hash', 3 * 256 * 1024);
        const whole = Buffer.concat([sent, bytesOf('untrusted hash tail', 100)]);
        const id = await store.startUpload();
        await assert.rejects(
          store.appendUpload(id, failingSource(sent, 256 * 1024, (s, e) => setImmediate(() => s.destroy(e)))),
        );
        const kept = await store.uploadSize(id);
        assert.ok(kept <= sent.length, `kept ${kept}`);
        // Finish with bytes of the right length that differ from the rest of `whole`.
        const wrongTail = Buffer.from(whole.subarray(kept)).map((byte) => byte ^ 0x5a);
        assert.equal(await store.appendUpload(id, Readable.from([wrongTail])), whole.length);
        await expectCode(store.commitUpload(id, digestOf(whole)), 'DIGEST_INVALID');
        assert.equal(await store.stat(digestOf(whole)), undefined);
        await expectCode(store.uploadSize(id), 'BLOB_UPLOAD_UNKNOWN');
        assert.deepEqual(await listBlobs(store), []);
      });

      it('an append aborted by its signal keeps exactly the bytes written, and the upload can be resumed', async () => {
        const whole = bytesOf('aborted append', 512 * 1024);
        const id = await store.startUpload();
        // A signal aborted before the call appends nothing.
        await assert.rejects(store.appendUpload(id, Readable.from([whole]), { signal: AbortSignal.abort() }));
        assert.equal(await store.uploadSize(id), 0, 'nothing appended under an already-aborted signal');
        const controller = new AbortController();
        let pushed = false;
        const source = new Readable({
          read() {
            // One chunk, then a client that stalls until the abort.
            if (!pushed) {
              pushed = true;
              this.push(whole.subarray(0, 100_000));
            }
          },
        });
        const append = store.appendUpload(id, source, { signal: controller.signal });
        await delay(50);
        controller.abort();
        await assert.rejects(append);
        const kept = await store.uploadSize(id);
        assert.ok(kept >= 0 && kept <= 100_000, `kept ${kept}`);
        assert.equal(await store.appendUpload(id, Readable.from([whole.subarray(kept)])), whole.length);
        const digest = digestOf(whole);
        assert.deepEqual(await store.commitUpload(id, digest), { digest, size: whole.length });
        assert.ok((await collect(await store.read(digest))).equals(whole));
      });

      it('listUploads yields open uploads with their sizes, and not committed or cancelled ones', async () => {
        assert.deepEqual(await listUploads(store), []);
        const before = Date.now();
        const empty = await store.startUpload();
        const partial = await store.startUpload();
        await store.appendUpload(partial, Readable.from([bytesOf('partial', 4321)]));
        const committed = await store.startUpload();
        await store.appendUpload(committed, Readable.from([bytesOf('committed', 10)]));
        await store.commitUpload(committed, digestOf(bytesOf('committed', 10)));
        const cancelled = await store.startUpload();
        await store.cancelUpload(cancelled);

        const uploads = await listUploads(store);
        assert.deepEqual(
          uploads.map((u) => [u.id, u.size]),
          [
            [empty, 0],
            [partial, 4321],
          ].sort((a, b) => compare(a[0] as string, b[0] as string)),
        );
        for (const upload of uploads) {
          assert.ok(upload.modifiedAt instanceof Date && !Number.isNaN(upload.modifiedAt.getTime()));
          // Generous slack for coarse filesystem timestamps and clock skew with remote stores.
          assert.ok(upload.modifiedAt.getTime() >= before - 60_000, 'modifiedAt is recent');
          assert.ok(upload.modifiedAt.getTime() <= Date.now() + 60_000, 'modifiedAt is not in the future');
        }
        assert.deepEqual(await listBlobs(store), [{ digest: digestOf(bytesOf('committed', 10)), size: 10 }]);
      });
    });

    describe('list', () => {
      it('an empty store lists nothing', async () => {
        assert.deepEqual(await listBlobs(store), []);
      });

      it('yields every committed blob with its size, and no uploads', async () => {
        const a = bytesOf('list a', 100);
        const b = bytesOf('list b', 20_000);
        const c = bytesOf('list c', 7);
        const expected = sortBlobs([
          { digest: await putBlob(store, a), size: a.length },
          { digest: await putBlob(store, b), size: b.length },
          { digest: await putBlob(store, c, 'sha512'), size: c.length },
          { digest: await putBlob(store, Buffer.alloc(0)), size: 0 },
        ]);
        const open = await store.startUpload();
        await store.appendUpload(open, Readable.from([bytesOf('open upload', 999)]));
        await store.startUpload();
        const failed = await store.startUpload();
        await store.appendUpload(failed, Readable.from([bytesOf('failed', 50)]));
        await expectCode(store.commitUpload(failed, digestOf(bytesOf('not failed', 50))), 'DIGEST_INVALID');

        const listed = await listBlobs(store);
        assert.deepEqual(listed, expected);
        for (const info of listed) assert.doesNotThrow(() => parseDigest(info.digest));
      });
    });

    describe('edge sizes', () => {
      it('stores a 0-byte blob (the digest of empty input)', async () => {
        const empty = Buffer.alloc(0);
        const digest = digestOf(empty);
        assert.equal(digest, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
        const id = await store.startUpload();
        assert.equal(await store.appendUpload(id, Readable.from([empty])), 0);
        assert.equal(await store.uploadSize(id), 0);
        assert.deepEqual(await store.commitUpload(id, digest), { digest, size: 0 });
        assert.deepEqual(await store.stat(digest), { digest, size: 0 });
        assert.equal((await collect(await store.read(digest))).length, 0);
        assert.deepEqual(await listBlobs(store), [{ digest, size: 0 }]);
        // With no append at all, and with sha512.
        const none = await store.startUpload();
        assert.deepEqual(await store.commitUpload(none, digestOf(empty, 'sha512')), { digest: digestOf(empty, 'sha512'), size: 0 });
        assert.equal((await collect(await store.read(digestOf(empty, 'sha512')))).length, 0);
        // An empty upload does not pass for non-empty content.
        const wrong = await store.startUpload();
        await expectCode(store.commitUpload(wrong, digestOf(Buffer.from('x'))), 'DIGEST_INVALID');
        assert.equal(await store.delete(digest), true);
        assert.equal(await store.stat(digest), undefined);
      });

      it('round-trips an 8 MiB blob streamed in and out, with ranges across chunk boundaries', async () => {
        const size = 8 * 1024 * 1024 + 3;
        const expected = await streamDigest(Readable.from(generate('large', size, 64 * 1024)));
        const id = await store.startUpload();
        // Two appends, the first ending mid-way through the blob.
        const half = 4 * 1024 * 1024 + 1;
        assert.equal(await store.appendUpload(id, Readable.from(generate('large', size, 64 * 1024, 0, half))), half);
        assert.equal(await store.appendUpload(id, Readable.from(generate('large', size, 64 * 1024, half, size))), size);
        assert.deepEqual(await store.commitUpload(id, expected), { digest: expected, size });
        assert.deepEqual(await store.stat(expected), { digest: expected, size });

        const read = await store.read(expected);
        assert.equal(await streamDigest(read), expected, 'what comes back hashes to the digest');
        const reread = await collect(await store.read(expected));
        assert.equal(reread.length, size);

        for (const [start, end] of [
          [1024 * 1024 - 3, 1024 * 1024 + 3],
          [half - 1, half],
          [0, 65_535],
          [size - 1, size - 1],
          [size - 100_000, size - 1],
        ] as const) {
          const part = await collect(await store.read(expected, { range: { start, end } }));
          assert.ok(part.equals(reread.subarray(start, end + 1)), `range ${start}-${end}`);
        }
        assert.deepEqual(await listBlobs(store), [{ digest: expected, size }]);
      });

      it('a read whose signal aborts mid-stream ends with an error', async () => {
        const size = 8 * 1024 * 1024;
        const digest = await putStreamed(store, 'abortable', size);
        const controller = new AbortController();
        const stream = await store.read(digest, { signal: controller.signal });
        let received = 0;
        let chunks = 0;
        await assert.rejects(
          (async () => {
            for await (const chunk of stream) {
              received += (chunk as Buffer).length;
              chunks++;
              if (chunks === 1) controller.abort();
            }
          })(),
          (err: unknown) => err instanceof Error,
        );
        assert.ok(received < size, `stopped early: ${received} of ${size} bytes`);
        assert.ok(stream.destroyed, 'the stream is destroyed');
        // The blob itself is unaffected.
        assert.equal(await streamDigest(await store.read(digest)), digest);
      });

      it('a read whose signal is already aborted does not deliver the blob', async () => {
        const data = bytesOf('pre-aborted', 100_000);
        const digest = await putBlob(store, data);
        await assert.rejects(async () => {
          const stream = await store.read(digest, { signal: AbortSignal.abort() });
          await collect(stream);
        });
        assert.ok((await collect(await store.read(digest))).equals(data));
      });

      it('a range read can be aborted too', async () => {
        const size = 8 * 1024 * 1024;
        const digest = await putStreamed(store, 'abortable range', size);
        const controller = new AbortController();
        const stream = await store.read(digest, { range: { start: 1, end: size - 2 }, signal: controller.signal });
        let received = 0;
        await assert.rejects(async () => {
          for await (const chunk of stream) {
            received += (chunk as Buffer).length;
            controller.abort();
          }
        });
        assert.ok(received < size - 2, `stopped early: ${received} bytes`);
      });
    });
  });
}

// ---- helpers ----

async function expectCode(promise: Promise<unknown>, code: ErrorCode, message?: string): Promise<void> {
  await assert.rejects(
    promise,
    (err: unknown) => {
      assert.ok(isRegistryError(err), `${message ?? code}: expected a RegistryError, got ${String(err)}`);
      assert.equal(err.code, code, message);
      return true;
    },
    message,
  );
}

/**
 * Deterministic bytes `[from, to)` of a `size`-byte stream named `seed`, in chunks of `chunkSize`, without
 * ever holding the whole: byte i is a function of (seed, i), so any slice can be generated on its own.
 */
function* generate(seed: string, size: number, chunkSize: number, from = 0, to = size): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest().readUInt32LE(0);
  for (let offset = from; offset < to; offset += chunkSize) {
    const end = Math.min(offset + chunkSize, to);
    const chunk = Buffer.allocUnsafe(end - offset);
    for (let i = offset; i < end; i++) {
      // A cheap integer hash of the position (xorshift-multiply), mixed with the seed.
      let x = (i ^ key) >>> 0;
      x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
      x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
      chunk[i - offset] = (x ^ (x >>> 16)) & 0xff;
    }
    yield chunk;
  }
}

async function streamDigest(stream: Readable, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
  const hash = createHash(algorithm);
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function putBlob(store: BlobStore, data: Buffer, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
  const digest = digestOf(data, algorithm);
  const id = await store.startUpload();
  await store.appendUpload(id, Readable.from([data]));
  const info = await store.commitUpload(id, digest);
  assert.deepEqual(info, { digest, size: data.length });
  return digest;
}

async function putStreamed(store: BlobStore, seed: string, size: number): Promise<Digest> {
  const digest = await streamDigest(Readable.from(generate(seed, size, 64 * 1024)));
  const id = await store.startUpload();
  await store.appendUpload(id, Readable.from(generate(seed, size, 64 * 1024)));
  assert.deepEqual(await store.commitUpload(id, digest), { digest, size });
  return digest;
}

/** A source that delivers `data` in `chunkSize` pieces, then fails as `fail` arranges. */
function failingSource(data: Buffer, chunkSize: number, fail: (stream: Readable, error: Error) => void): Readable {
  let started = false;
  return new Readable({
    read() {
      if (started) return;
      started = true;
      for (let offset = 0; offset < data.length; offset += chunkSize) this.push(data.subarray(offset, offset + chunkSize));
      fail(this, new Error('client went away'));
    },
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortBlobs(blobs: BlobInfo[]): BlobInfo[] {
  return [...blobs].sort((a, b) => compare(a.digest, b.digest));
}

async function listBlobs(store: BlobStore): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const info of store.list()) out.push({ digest: info.digest, size: info.size });
  return sortBlobs(out);
}

async function listUploads(store: BlobStore): Promise<UploadInfo[]> {
  const out: UploadInfo[] = [];
  for await (const upload of store.listUploads()) out.push(upload);
  return out.sort((a, b) => compare(a.id, b.id));
}
