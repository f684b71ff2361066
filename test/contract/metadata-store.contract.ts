import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, type Digest } from '../../src/domain/digest.ts';
import type { Descriptor } from '../../src/domain/manifest.ts';
import type { MetadataStore, NewManifest, PageRequest, UploadSession } from '../../src/storage/metadata-store.ts';

/**
 * What a driver's runner hands the contract: a fresh, empty store, and `cleanup`, which must close the
 * store and release everything `open` created (temporary files, schemas, ...).
 */
export interface MetadataStoreHarness {
  store: MetadataStore;
  cleanup(): Promise<void>;
}

const IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const IMAGE_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Fixed instants, so every driver sees the same times (millisecond precision). */
const T0 = new Date('2024-03-01T12:00:00.000Z');
function at(offsetMs: number): Date {
  return new Date(T0.getTime() + offsetMs);
}

/**
 * The one contract every MetadataStore driver must pass. Each test gets its own fresh store from `open`,
 * so tests may assert on complete listings.
 */
export function metadataStoreContract(driverName: string, open: () => Promise<MetadataStoreHarness>): void {
  describe(`MetadataStore contract: ${driverName}`, () => {
    let harness: MetadataStoreHarness;
    let store: MetadataStore;

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    it('starts empty', async () => {
      const digest = digestOf(Buffer.from('nothing'));
      assert.deepEqual(await store.repositories.list({ limit: 100 }), []);
      assert.equal(await store.repositories.get('library/alpine'), undefined);
      assert.equal(await store.manifests.get('library/alpine', digest), undefined);
      assert.equal(await store.manifests.delete('library/alpine', digest), false);
      assert.deepEqual(await store.manifests.referrers('library/alpine', digest), []);
      assert.equal(await store.tags.resolve('library/alpine', 'latest'), undefined);
      assert.deepEqual(await store.tags.list('library/alpine', { limit: 100 }), []);
      assert.equal(await store.tags.delete('library/alpine', 'latest'), false);
      assert.equal(await store.blobLinks.get('library/alpine', digest), undefined);
      assert.equal(await store.blobLinks.unlink('library/alpine', digest), false);
      assert.equal(await store.uploads.get('00000000-0000-0000-0000-000000000000'), undefined);
      assert.deepEqual(await store.uploads.listStale(new Date('2999-01-01T00:00:00Z')), []);
    });

    describe('manifests', () => {
      it('put creates the repository, once', async () => {
        const m = manifest('repo create');
        await store.manifests.put({ ...m, repository: 'library/alpine', at: at(0) });
        assert.deepEqual(await store.repositories.get('library/alpine'), { name: 'library/alpine', createdAt: at(0) });
        assert.deepEqual(await store.repositories.list({ limit: 100 }), ['library/alpine']);
        // Later pushes neither duplicate it nor change when it was created.
        await store.manifests.put({ ...manifest('repo create 2'), repository: 'library/alpine', at: at(5000) });
        await store.manifests.put({ ...m, repository: 'library/alpine', tag: 'latest', at: at(6000) });
        assert.deepEqual(await store.repositories.get('library/alpine'), { name: 'library/alpine', createdAt: at(0) });
        assert.deepEqual(await store.repositories.list({ limit: 100 }), ['library/alpine']);
        assert.equal(await store.repositories.get('library'), undefined, 'no parent repository is implied');
        assert.equal(await store.repositories.get('library/alpine/x'), undefined);
      });

      it('stores the manifest byte for byte with all its fields', async () => {
        // Odd but valid JSON formatting, multi-byte UTF-8, and (since the store holds bytes, not text)
        // bytes that are not UTF-8 at all.
        const contents = [
          Buffer.from('{\r\n\t"schemaVersion" : 2 ,\n  "annotations": {"é": "ü 🐳"}\n}\n\n', 'utf8'),
          Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"schemaVersion":2}')]),
          Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        ];
        for (const [i, content] of contents.entries()) {
          const digest = digestOf(content);
          const subject = digestOf(Buffer.from(`subject ${i}`));
          await store.manifests.put({
            repository: 'bytes',
            digest,
            mediaType: IMAGE_MANIFEST,
            content,
            subject,
            artifactType: 'application/vnd.example.sbom',
            annotations: { 'org.opencontainers.image.created': '2024-03-01T12:00:00Z', 'é': 'ü 🐳', empty: '' },
            references: { blobs: [digestOf(Buffer.from('config')), digestOf(Buffer.from('layer'))], manifests: [] },
            at: at(i),
          });
          const record = await store.manifests.get('bytes', digest);
          assert.ok(record, `manifest ${i} stored`);
          assert.ok(Buffer.isBuffer(record.content), 'content is a Buffer');
          assert.ok(record.content.equals(content), `content ${i} byte for byte`);
          assert.deepEqual(
            defined({ ...record, content: undefined }),
            {
              repository: 'bytes',
              digest,
              mediaType: IMAGE_MANIFEST,
              size: content.length,
              subject,
              artifactType: 'application/vnd.example.sbom',
              annotations: { 'org.opencontainers.image.created': '2024-03-01T12:00:00Z', 'é': 'ü 🐳', empty: '' },
              pushedAt: at(i),
            },
          );
          assert.equal(record.lastPulledAt, undefined, 'never pulled');
        }
      });

      it('leaves optional fields absent when they were not given', async () => {
        const m = manifest('plain', { mediaType: IMAGE_INDEX });
        await store.manifests.put({ ...m, repository: 'plain', at: at(0) });
        const record = await store.manifests.get('plain', m.digest);
        assert.ok(record);
        assert.equal(record.subject, undefined);
        assert.equal(record.artifactType, undefined);
        assert.equal(record.annotations, undefined);
        assert.equal(record.lastPulledAt, undefined);
        assert.equal(record.mediaType, IMAGE_INDEX);
        assert.equal(record.size, m.content.length);
        assert.deepEqual(await store.tags.list('plain', { limit: 100 }), [], 'no tag without one given');
      });

      it('keeps manifests per repository', async () => {
        const m = manifest('shared');
        await store.manifests.put({ ...m, repository: 'a', at: at(0) });
        assert.equal(await store.manifests.get('b', m.digest), undefined);
        await store.manifests.put({ ...m, repository: 'b', tag: 'b-tag', at: at(1000) });
        assert.equal((await store.manifests.get('a', m.digest))?.pushedAt.getTime(), at(0).getTime());
        assert.equal((await store.manifests.get('b', m.digest))?.pushedAt.getTime(), at(1000).getTime());
        assert.equal(await store.tags.resolve('a', 'b-tag'), undefined);
        assert.equal(await store.tags.resolve('b', 'b-tag'), m.digest);
        assert.equal(await store.manifests.get('c', m.digest), undefined);
      });

      it('put with a tag tags it; putting the same digest again only moves the tag', async () => {
        const m = manifest('tagged');
        await store.manifests.put({ ...m, repository: 'r', tag: 'v1', at: at(0) });
        assert.equal(await store.tags.resolve('r', 'v1'), m.digest);

        // Same digest again, with another tag and (contrived) different details: the record stays.
        await store.manifests.put({
          ...m,
          repository: 'r',
          tag: 'v2',
          annotations: { changed: 'yes' },
          artifactType: 'application/vnd.example.other',
          at: at(60_000),
        });
        const record = await store.manifests.get('r', m.digest);
        assert.ok(record);
        assert.ok(record.content.equals(m.content));
        assert.equal(record.pushedAt.getTime(), at(0).getTime(), 'pushedAt unchanged');
        assert.equal(record.annotations, undefined, 'annotations unchanged');
        assert.equal(record.artifactType, undefined, 'artifactType unchanged');
        assert.equal(await store.tags.resolve('r', 'v1'), m.digest, 'the old tag stays');
        assert.equal(await store.tags.resolve('r', 'v2'), m.digest);

        // Again without a tag: nothing changes.
        await store.manifests.put({ ...m, repository: 'r', at: at(120_000) });
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['v1', 'v2']);

        // A tag moves from one manifest to another.
        const n = manifest('tagged 2');
        await store.manifests.put({ ...n, repository: 'r', tag: 'v1', at: at(180_000) });
        assert.equal(await store.tags.resolve('r', 'v1'), n.digest);
        assert.equal(await store.tags.resolve('r', 'v2'), m.digest);
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['v1', 'v2']);
        assert.ok(await store.manifests.get('r', m.digest), 'the untagged manifest stays');
        // And back again, by re-putting the first manifest.
        await store.manifests.put({ ...m, repository: 'r', tag: 'v1', at: at(240_000) });
        assert.equal(await store.tags.resolve('r', 'v1'), m.digest);
      });

      it('delete removes the manifest and every tag pointing at it, and nothing else', async () => {
        const m = manifest('doomed');
        const n = manifest('survivor');
        await store.manifests.put({ ...m, repository: 'r', tag: 'one', at: at(0) });
        await store.manifests.put({ ...m, repository: 'r', tag: 'two', at: at(1) });
        await store.manifests.put({ ...n, repository: 'r', tag: 'three', at: at(2) });
        await store.manifests.put({ ...m, repository: 'other', tag: 'one', at: at(3) });

        assert.equal(await store.manifests.delete('r', m.digest), true);
        assert.equal(await store.manifests.get('r', m.digest), undefined);
        assert.equal(await store.tags.resolve('r', 'one'), undefined);
        assert.equal(await store.tags.resolve('r', 'two'), undefined);
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['three']);
        assert.equal(await store.tags.resolve('r', 'three'), n.digest);
        assert.ok(await store.manifests.get('r', n.digest));
        // The same digest in another repository is untouched.
        assert.ok(await store.manifests.get('other', m.digest));
        assert.equal(await store.tags.resolve('other', 'one'), m.digest);
        // The repository remains.
        assert.ok(await store.repositories.get('r'));

        assert.equal(await store.manifests.delete('r', m.digest), false);
        assert.equal(await store.manifests.delete('nowhere', m.digest), false);

        // It can be pushed again afterwards, as new.
        await store.manifests.put({ ...m, repository: 'r', tag: 'again', at: at(10_000) });
        assert.equal((await store.manifests.get('r', m.digest))?.pushedAt.getTime(), at(10_000).getTime());
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['again', 'three']);
      });

      it('referrers lists descriptors of manifests whose subject matches, in that repository only', async () => {
        const subject = manifest('subject');
        await store.manifests.put({ ...subject, repository: 'app', tag: 'latest', at: at(0) });
        const sbom = manifest('sbom', {
          subject: subject.digest,
          artifactType: 'application/spdx+json',
          annotations: { 'org.opencontainers.image.created': '2024-03-01T12:00:00Z', note: 'é' },
        });
        const signature = manifest('signature', { subject: subject.digest, mediaType: IMAGE_INDEX });
        const unrelated = manifest('unrelated', { subject: digestOf(Buffer.from('another subject')), artifactType: 'x/y' });
        const elsewhere = manifest('elsewhere', { subject: subject.digest, artifactType: 'application/spdx+json' });
        await store.manifests.put({ ...sbom, repository: 'app', at: at(1000) });
        await store.manifests.put({ ...signature, repository: 'app', at: at(2000) });
        await store.manifests.put({ ...unrelated, repository: 'app', at: at(3000) });
        await store.manifests.put({ ...elsewhere, repository: 'other', at: at(4000) });
        // Pushing a referrer twice does not list it twice.
        await store.manifests.put({ ...sbom, repository: 'app', tag: 'sbom', at: at(5000) });

        const expected: Descriptor[] = [
          {
            mediaType: IMAGE_MANIFEST,
            digest: sbom.digest,
            size: sbom.content.length,
            artifactType: 'application/spdx+json',
            annotations: { 'org.opencontainers.image.created': '2024-03-01T12:00:00Z', note: 'é' },
          },
          { mediaType: IMAGE_INDEX, digest: signature.digest, size: signature.content.length },
        ];
        assert.deepEqual(sortDescriptors(await store.manifests.referrers('app', subject.digest)), sortDescriptors(expected));
        assert.deepEqual(sortDescriptors(await store.manifests.referrers('other', subject.digest)), [
          { mediaType: IMAGE_MANIFEST, digest: elsewhere.digest, size: elsewhere.content.length, artifactType: 'application/spdx+json' },
        ]);
        assert.deepEqual(await store.manifests.referrers('nowhere', subject.digest), []);
        assert.deepEqual(await store.manifests.referrers('app', sbom.digest), [], 'a referrer has no referrers of its own');

        // A subject need not exist itself.
        assert.equal(await store.manifests.get('app', unrelated.subject!), undefined);
        assert.deepEqual(sortDescriptors(await store.manifests.referrers('app', unrelated.subject!)), [
          { mediaType: IMAGE_MANIFEST, digest: unrelated.digest, size: unrelated.content.length, artifactType: 'x/y' },
        ]);

        // A deleted referrer is no longer listed.
        assert.equal(await store.manifests.delete('app', signature.digest), true);
        assert.deepEqual(sortDescriptors(await store.manifests.referrers('app', subject.digest)), [expected[0]]);
      });

      it('recordPulls sets lastPulledAt and never moves it backwards', async () => {
        const m = manifest('pulled');
        const n = manifest('not pulled');
        await store.manifests.put({ ...m, repository: 'r', at: at(0) });
        await store.manifests.put({ ...n, repository: 'r', at: at(0) });
        await store.manifests.put({ ...m, repository: 'other', at: at(0) });

        await store.manifests.recordPulls([{ repository: 'r', digest: m.digest, at: at(10_000) }]);
        assert.equal((await store.manifests.get('r', m.digest))?.lastPulledAt?.getTime(), at(10_000).getTime());
        assert.equal((await store.manifests.get('r', n.digest))?.lastPulledAt, undefined, 'other manifests untouched');
        assert.equal((await store.manifests.get('other', m.digest))?.lastPulledAt, undefined, 'other repositories untouched');

        await store.manifests.recordPulls([{ repository: 'r', digest: m.digest, at: at(5_000) }]);
        assert.equal((await store.manifests.get('r', m.digest))?.lastPulledAt?.getTime(), at(10_000).getTime(), 'not backwards');

        // A batch, out of order and with repeats: the latest wins.
        await store.manifests.recordPulls([
          { repository: 'r', digest: m.digest, at: at(30_000) },
          { repository: 'r', digest: m.digest, at: at(20_000) },
          { repository: 'r', digest: n.digest, at: at(1_000) },
          { repository: 'other', digest: m.digest, at: at(7_000) },
          { repository: 'r', digest: m.digest, at: at(25_000) },
        ]);
        assert.equal((await store.manifests.get('r', m.digest))?.lastPulledAt?.getTime(), at(30_000).getTime());
        assert.equal((await store.manifests.get('r', n.digest))?.lastPulledAt?.getTime(), at(1_000).getTime());
        assert.equal((await store.manifests.get('other', m.digest))?.lastPulledAt?.getTime(), at(7_000).getTime());

        // Pulls of what is not there are ignored, not created, not an error; an empty batch is fine.
        const ghost = digestOf(Buffer.from('ghost'));
        await store.manifests.recordPulls([
          { repository: 'r', digest: ghost, at: at(40_000) },
          { repository: 'nowhere', digest: m.digest, at: at(40_000) },
        ]);
        await store.manifests.recordPulls([]);
        assert.equal(await store.manifests.get('r', ghost), undefined);
        assert.equal(await store.repositories.get('nowhere'), undefined);
        assert.equal((await store.manifests.get('r', m.digest))?.lastPulledAt?.getTime(), at(30_000).getTime());
        // Pulls do not change when it was pushed.
        assert.equal((await store.manifests.get('r', m.digest))?.pushedAt.getTime(), at(0).getTime());
      });
    });

    describe('tags', () => {
      it('resolve, list and delete', async () => {
        const m = manifest('tags m');
        const n = manifest('tags n');
        await store.manifests.put({ ...m, repository: 'r', tag: 'latest', at: at(0) });
        await store.manifests.put({ ...n, repository: 'r', tag: 'stable', at: at(1) });
        await store.manifests.put({ ...n, repository: 'other', tag: 'latest', at: at(2) });
        assert.equal(await store.tags.resolve('r', 'latest'), m.digest);
        assert.equal(await store.tags.resolve('r', 'stable'), n.digest);
        assert.equal(await store.tags.resolve('other', 'latest'), n.digest);
        assert.equal(await store.tags.resolve('r', 'missing'), undefined);
        assert.equal(await store.tags.resolve('r', 'LATEST'), undefined, 'tags are case-sensitive');
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['latest', 'stable']);
        assert.deepEqual(await store.tags.list('other', { limit: 100 }), ['latest']);

        assert.equal(await store.tags.delete('r', 'latest'), true);
        assert.equal(await store.tags.resolve('r', 'latest'), undefined);
        assert.equal(await store.tags.delete('r', 'latest'), false);
        assert.ok(await store.manifests.get('r', m.digest), 'deleting a tag keeps its manifest');
        assert.equal(await store.tags.resolve('other', 'latest'), n.digest, 'same tag elsewhere untouched');
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['stable']);
        assert.equal(await store.tags.delete('nowhere', 'stable'), false);
      });

      it('lists tags in lexical (byte) order, paging with last and limit', async () => {
        // Characters valid in tags, chosen to sort differently by bytes than by most locales.
        const tags = ['latest', 'v1', 'v1.0', 'v1.0-rc1', 'v1.0.1', 'v10', 'v1_0', 'V1', 'A', 'a', '0', '_x', 'v1-0', 'Z9', 'z'];
        const m = manifest('many tags');
        for (const [i, tag] of tags.entries()) await store.manifests.put({ ...m, repository: 'r', tag, at: at(i) });
        await store.manifests.put({ ...manifest('decoy'), repository: 'r2', tag: 'v1.0-decoy', at: at(0) });
        const expected = byteSorted(tags);

        assert.deepEqual(await store.tags.list('r', { limit: 100 }), expected);
        assert.deepEqual(await store.tags.list('r', { limit: tags.length }), expected);
        for (const limit of [1, 2, 3, 4, 7, 14, 15]) {
          assert.deepEqual(await pageAll((page) => store.tags.list('r', page), limit), expected, `limit ${limit}`);
        }
        // `last` need not be a tag that exists.
        assert.deepEqual(await store.tags.list('r', { last: 'v1.', limit: 100 }), expected.filter((t) => byteCompare(t, 'v1.') > 0));
        assert.deepEqual(await store.tags.list('r', { last: 'v1.0', limit: 2 }), expected.filter((t) => byteCompare(t, 'v1.0') > 0).slice(0, 2));
        assert.deepEqual(await store.tags.list('r', { last: 'zz', limit: 100 }), []);
        assert.deepEqual(await store.tags.list('r', { last: '', limit: 3 }), expected.slice(0, 3));
      });
    });

    describe('repositories', () => {
      it('lists repositories in lexical (byte) order, paging with last and limit, with no gaps or duplicates', async () => {
        // `a`, `a-b`, `a/b` and `a0` sort differently by bytes ('-' < '/' < '0') than by many collations.
        const names = ['a0', 'a/b', 'a', 'a-b', 'a/b/c', 'a/b-c', 'a/b0', 'a.b', 'a_b', 'ab', 'b', 'library/alpine', 'library/alpine-edge', 'library/alpine/x', 'z'];
        for (const [i, name] of names.entries()) {
          await store.manifests.put({ ...manifest(`repo ${name}`), repository: name, at: at(i) });
        }
        const expected = byteSorted(names);
        assert.deepEqual(expected.slice(0, 4), ['a', 'a-b', 'a.b', 'a/b']);

        assert.deepEqual(await store.repositories.list({ limit: 100 }), expected);
        for (const limit of [1, 2, 3, 5, 14, 15, 16]) {
          assert.deepEqual(await pageAll((page) => store.repositories.list(page), limit), expected, `limit ${limit}`);
        }
        assert.deepEqual(await store.repositories.list({ last: 'a', limit: 3 }), ['a-b', 'a.b', 'a/b']);
        assert.deepEqual(await store.repositories.list({ last: 'a-b', limit: 2 }), ['a.b', 'a/b']);
        assert.deepEqual(await store.repositories.list({ last: 'a/b', limit: 3 }), ['a/b-c', 'a/b/c', 'a/b0']);
        assert.deepEqual(await store.repositories.list({ last: 'a/b0', limit: 1 }), ['a0']);
        // `last` need not be a repository that exists.
        assert.deepEqual(await store.repositories.list({ last: 'a/', limit: 2 }), ['a/b', 'a/b-c']);
        assert.deepEqual(await store.repositories.list({ last: 'library', limit: 100 }), ['library/alpine', 'library/alpine-edge', 'library/alpine/x', 'z']);
        assert.deepEqual(await store.repositories.list({ last: 'z', limit: 100 }), []);
        for (const name of names) {
          assert.equal((await store.repositories.get(name))?.name, name);
        }
      });
    });

    describe('blob links', () => {
      it('get, link and unlink, per repository', async () => {
        const d = digestOf(Buffer.from('layer'));
        const e = digestOf(Buffer.from('config'));
        assert.equal(await store.blobLinks.get('a', d), undefined);
        await store.blobLinks.link('a', d, 1234, at(0));
        assert.equal(await store.blobLinks.get('a', d), 1234);
        assert.equal(await store.blobLinks.get('b', d), undefined, 'a link in one repository is not visible in another');
        assert.equal(await store.blobLinks.get('a', e), undefined);

        // Idempotent.
        await store.blobLinks.link('a', d, 1234, at(1000));
        assert.equal(await store.blobLinks.get('a', d), 1234);

        await store.blobLinks.link('b', d, 1234, at(2000));
        await store.blobLinks.link('a', e, 0, at(2000));
        assert.equal(await store.blobLinks.get('b', d), 1234);
        assert.equal(await store.blobLinks.get('a', e), 0, 'a 0-byte blob links with size 0');

        assert.equal(await store.blobLinks.unlink('a', d), true);
        assert.equal(await store.blobLinks.get('a', d), undefined);
        assert.equal(await store.blobLinks.get('b', d), 1234, 'unlinking in one repository leaves the other');
        assert.equal(await store.blobLinks.get('a', e), 0);
        assert.equal(await store.blobLinks.unlink('a', d), false);
        assert.equal(await store.blobLinks.unlink('nowhere', d), false);

        // Linking again after unlinking works.
        await store.blobLinks.link('a', d, 1234, at(3000));
        assert.equal(await store.blobLinks.get('a', d), 1234);
      });

      it('links large sizes exactly', async () => {
        const d = digestOf(Buffer.from('huge'));
        const size = 2 ** 40 + 7; // beyond 32 bits
        await store.blobLinks.link('big', d, size, at(0));
        assert.equal(await store.blobLinks.get('big', d), size);
      });

      it('links coexist with manifests in the same repository', async () => {
        const m = manifest('with links');
        const d = digestOf(Buffer.from('linked layer'));
        await store.blobLinks.link('r', d, 10, at(0));
        await store.manifests.put({ ...m, repository: 'r', tag: 'latest', references: { blobs: [d], manifests: [] }, at: at(1000) });
        assert.equal(await store.blobLinks.get('r', d), 10);
        assert.equal(await store.tags.resolve('r', 'latest'), m.digest);
        assert.equal(await store.manifests.delete('r', m.digest), true);
        assert.equal(await store.blobLinks.get('r', d), 10, 'deleting a manifest leaves blob links');
      });
    });

    describe('uploads', () => {
      it('create, get, touch, delete', async () => {
        const session: UploadSession = {
          id: '5b0e1f3a-0c4e-4d58-9a51-8f3c8c0b6f10',
          repository: 'library/alpine',
          startedAt: at(0),
          updatedAt: at(0),
        };
        const other: UploadSession = { ...session, id: 'other-upload', repository: 'other' };
        await store.uploads.create(session);
        await store.uploads.create(other);
        assert.deepEqual(await store.uploads.get(session.id), session);
        assert.deepEqual(await store.uploads.get(other.id), other);
        assert.equal(await store.uploads.get('missing'), undefined);

        await store.uploads.touch(session.id, at(90_000));
        assert.deepEqual(await store.uploads.get(session.id), { ...session, updatedAt: at(90_000) }, 'touch moves only updatedAt');
        assert.deepEqual(await store.uploads.get(other.id), other, 'touch moves only that session');

        await store.uploads.touch('missing', at(90_000)).catch(() => undefined);
        assert.equal(await store.uploads.get('missing'), undefined, 'touching an unknown session creates nothing');

        await store.uploads.delete(session.id);
        assert.equal(await store.uploads.get(session.id), undefined);
        assert.deepEqual(await store.uploads.get(other.id), other);
        // Deleting again (expiry racing a finished upload) is harmless.
        await store.uploads.delete(session.id);
        assert.equal(await store.uploads.get(session.id), undefined);
      });

      it('listStale returns sessions last touched strictly before the cut-off', async () => {
        const sessions: UploadSession[] = [0, 1000, 2000, 3000].map((offset, i) => ({
          id: `upload-${i}`,
          repository: `repo-${i % 2}`,
          startedAt: at(offset - 500),
          updatedAt: at(offset),
        }));
        for (const session of sessions) await store.uploads.create(session);
        const stale = async (before: Date) => (await store.uploads.listStale(before)).sort((a, b) => byteCompare(a.id, b.id));

        assert.deepEqual(await stale(at(-1)), []);
        assert.deepEqual(await stale(at(0)), [], 'a session touched exactly at the cut-off is not stale');
        assert.deepEqual(await stale(at(1)), [sessions[0]]);
        assert.deepEqual(await stale(at(1000)), [sessions[0]]);
        assert.deepEqual(await stale(at(2001)), [sessions[0], sessions[1], sessions[2]]);
        assert.deepEqual(await stale(at(1_000_000)), sessions);

        // Touching makes a session fresh again; startedAt does not count.
        await store.uploads.touch('upload-0', at(5000));
        assert.deepEqual(await stale(at(2001)), [sessions[1], sessions[2]]);
        assert.deepEqual(await stale(at(5000)), [sessions[1], sessions[2], sessions[3]]);
        assert.deepEqual(await stale(at(5001)), [{ ...sessions[0]!, updatedAt: at(5000) }, sessions[1], sessions[2], sessions[3]]);

        await store.uploads.delete('upload-1');
        assert.deepEqual(await stale(at(2001)), [sessions[2]]);
      });
    });
  });
}

// ---- helpers ----

interface TestManifest {
  digest: Digest;
  mediaType: string;
  content: Buffer;
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
  references: NewManifest['references'];
}

/** A small, deterministic manifest named by `seed`; spread it into `put` with a repository and time. */
function manifest(
  seed: string,
  extra: { mediaType?: string; subject?: Digest; artifactType?: string; annotations?: Record<string, string> } = {},
): TestManifest {
  const config = digestOf(Buffer.from(`config ${seed}`));
  const layer = digestOf(Buffer.from(`layer ${seed}`));
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: extra.mediaType ?? IMAGE_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 32 }],
    ...(extra.artifactType && { artifactType: extra.artifactType }),
    ...(extra.subject && { subject: { mediaType: IMAGE_MANIFEST, digest: extra.subject, size: 100 } }),
    ...(extra.annotations && { annotations: extra.annotations }),
  };
  const content = Buffer.from(JSON.stringify(body, null, 2));
  return {
    digest: digestOf(content),
    mediaType: extra.mediaType ?? IMAGE_MANIFEST,
    content,
    ...(extra.subject && { subject: extra.subject }),
    ...(extra.artifactType && { artifactType: extra.artifactType }),
    ...(extra.annotations && { annotations: extra.annotations }),
    references: { blobs: [config, layer], manifests: [] },
  };
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function byteSorted(names: string[]): string[] {
  return [...names].sort(byteCompare);
}

/** Walks every page of a listing, checking each page's size and that it continues after `last`. */
async function pageAll(list: (page: PageRequest) => Promise<string[]>, limit: number): Promise<string[]> {
  const all: string[] = [];
  let last: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await list(last === undefined ? { limit } : { last, limit });
    assert.ok(page.length <= limit, `page of ${page.length} exceeds limit ${limit}`);
    for (const name of page) {
      if (last !== undefined) assert.ok(byteCompare(name, last) > 0, `${name} does not come after ${last}`);
      last = name;
    }
    all.push(...page);
    if (page.length < limit) return all;
  }
  assert.fail('paging did not end');
}

/** Descriptors in digest order (the contract fixes no order), without keys whose value is undefined. */
function sortDescriptors(descriptors: Descriptor[]): Descriptor[] {
  return descriptors.map(defined).sort((a, b) => byteCompare(a.digest, b.digest));
}

/** A copy without the keys whose value is undefined: absent and undefined mean the same to callers. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
