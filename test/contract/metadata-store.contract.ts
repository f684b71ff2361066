import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, type Digest } from '../../src/domain/digest.ts';
import type { Descriptor } from '../../src/domain/manifest.ts';
import type {
  AccessKeyRecord,
  CacheRuleRecord,
  CreationTemplateRecord,
  ManifestSummary,
  MetadataStore,
  NewManifest,
  PageRequest,
  RepositorySettings,
  SecretRecord,
  UploadSession,
  UserRecord,
} from '../../src/storage/metadata-store.ts';

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

    it('answers a ping', async () => {
      await store.ping();
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

      assert.equal(await store.repositories.updateSettings('library/alpine', { scanOnPush: true }), false);
      assert.equal(await store.repositories.delete('library/alpine'), false);
      assert.deepEqual(await store.manifests.list('library/alpine'), []);
      assert.equal(await store.manifests.referencesBlob('library/alpine', digest), false);
      assert.equal(await store.tags.state('library/alpine', 'latest'), undefined);
      assert.equal(await store.secrets.get('cistern/x'), undefined);
      assert.equal(await store.secrets.find('cistern/x'), undefined);
      assert.deepEqual(await store.secrets.list(), []);
      assert.deepEqual(await store.secrets.list({ includeScheduled: true }), []);
      assert.equal(await store.secrets.purgeDeleted(new Date('2999-01-01T00:00:00Z')), 0);
      assert.equal(await store.secrets.delete('cistern/x'), false);
      assert.deepEqual(await store.cacheRules.list(), []);
      assert.equal(await store.cacheRules.get('docker-hub'), undefined);
      assert.equal(await store.cacheRules.delete('docker-hub'), false);
      assert.deepEqual(await store.templates.list(), []);
      assert.equal(await store.templates.delete('ROOT'), false);
      assert.equal(await store.identities.getUser('admin'), undefined);
      assert.deepEqual(await store.identities.listUsers(), []);
      assert.equal(await store.identities.deleteUser('admin'), false);
      assert.equal(await store.identities.getKey('CKIAEXAMPLE'), undefined);
      assert.deepEqual(await store.identities.listKeys('admin'), []);
      assert.equal(await store.identities.deleteKey('CKIAEXAMPLE'), false);
      assert.equal(await store.identities.getLoginToken('0'.repeat(64)), undefined);
      assert.equal(await store.identities.deleteExpiredLoginTokens(new Date('2999-01-01T00:00:00Z')), 0);
      // None of those calls created anything.
      assert.deepEqual(await store.repositories.list({ limit: 100 }), []);
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

      it('list summarises every manifest of a repository with its sorted tags, oldest first', async () => {
        const first = manifest('list first');
        const second = manifest('list second', { mediaType: IMAGE_INDEX });
        const third = manifest('list third');
        const [firstConfig, firstLayer] = first.references.blobs as [Digest, Digest];
        const [thirdConfig, thirdLayer] = third.references.blobs as [Digest, Digest];
        const [, secondLayer] = second.references.blobs as [Digest, Digest];
        const huge = 2 ** 40 + 7;
        await store.blobLinks.link('r', firstConfig, 2, at(0));
        await store.blobLinks.link('r', firstLayer, huge, at(0));
        await store.blobLinks.link('r', thirdConfig, 100, at(0));
        // Linked elsewhere only: does not count in 'r'.
        await store.blobLinks.link('other', secondLayer, 5000, at(0));
        await store.blobLinks.link('other', thirdLayer, 7000, at(0));

        // Pushed in another order than their push times; tags given in no particular order.
        await store.manifests.put({ ...third, repository: 'r', tag: 'b-tag', at: at(3000) });
        await store.manifests.put({ ...third, repository: 'r', tag: 'a-tag', at: at(3100) });
        await store.manifests.put({ ...third, repository: 'r', tag: 'C', at: at(3200) });
        await store.manifests.put({ ...first, repository: 'r', tag: 'v1', at: at(1000) });
        await store.manifests.put({ ...first, repository: 'r', tag: 'latest', at: at(1100) });
        await store.manifests.put({ ...second, repository: 'r', at: at(2000) });
        await store.manifests.put({ ...second, repository: 'other', tag: 'elsewhere', at: at(500) });

        const summary = (m: TestManifest, tags: string[], blobBytes: number, pushedAt: Date, lastPulledAt?: Date): ManifestSummary => ({
          digest: m.digest,
          mediaType: m.mediaType,
          size: m.content.length,
          tags,
          blobBytes,
          children: [],
          inIndex: false,
          pushedAt,
          ...(lastPulledAt && { lastPulledAt }),
        });
        const list = async (repository: string) => (await store.manifests.list(repository)).map(defined);

        assert.deepEqual(await list('r'), [
          summary(first, ['latest', 'v1'], 2 + huge, at(1000)),
          summary(second, [], 0, at(2000)),
          summary(third, ['C', 'a-tag', 'b-tag'], 100, at(3000)),
        ]);
        assert.deepEqual(await list('other'), [summary(second, ['elsewhere'], 5000, at(500))]);
        assert.deepEqual(await list('nowhere'), []);
        for (const s of await store.manifests.list('r')) {
          assert.ok(s.pushedAt instanceof Date, 'pushedAt is a Date');
          assert.equal(s.lastPulledAt, undefined, 'never pulled');
        }

        // Blob links count as they come and go; only those of this repository.
        await store.blobLinks.link('r', thirdLayer, 50, at(4000));
        assert.equal(await store.blobLinks.unlink('r', firstLayer), true);
        await store.blobLinks.link('elsewhere', firstConfig, 999, at(4000));
        assert.deepEqual(
          (await list('r')).map((s) => s.blobBytes),
          [2, 0, 150],
        );

        // Tags move and go; pulls show.
        await store.manifests.put({ ...second, repository: 'r', tag: 'v1', at: at(5000) });
        assert.equal(await store.tags.delete('r', 'C'), true);
        await store.manifests.recordPulls([
          { repository: 'r', digest: first.digest, at: at(6000) },
          { repository: 'other', digest: second.digest, at: at(7000) },
        ]);
        assert.deepEqual(await list('r'), [
          summary(first, ['latest'], 2, at(1000), at(6000)),
          summary(second, ['v1'], 0, at(2000)),
          summary(third, ['a-tag', 'b-tag'], 150, at(3000)),
        ]);
        assert.deepEqual(await list('other'), [summary(second, ['elsewhere'], 5000, at(500), at(7000))]);

        // A deleted manifest is no longer listed.
        assert.equal(await store.manifests.delete('r', first.digest), true);
        assert.deepEqual(
          (await list('r')).map((s) => s.digest),
          [second.digest, third.digest],
        );
      });

      it('list gives an index its children and marks its platform manifests; it counts blobs, not child manifests, each once', async () => {
        const amd64 = manifest('list child amd64');
        const arm64 = manifest('list child arm64');
        const layer = digestOf(Buffer.from('list shared layer'));
        const config = digestOf(Buffer.from('list shared config'));
        // The same layer twice (a valid image may repeat a layer).
        const image = { ...manifest('list repeated layer'), references: { blobs: [config, layer, layer], manifests: [] } };
        const indexOf = (seed: string, children: Digest[]): TestManifest => {
          const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: IMAGE_INDEX, seed, manifests: children.map((digest) => ({ digest })) }));
          return { digest: digestOf(content), mediaType: IMAGE_INDEX, content, references: { blobs: [], manifests: children } };
        };
        const index = indexOf('multi', [amd64.digest, arm64.digest]);
        // An index whose child was never pushed here (children need not exist).
        const missing = digestOf(Buffer.from('list child never pushed'));
        const sparse = indexOf('sparse', [missing]);

        await store.blobLinks.link('r', layer, 1000, at(0));
        await store.blobLinks.link('r', config, 10, at(0));
        // A link that happens to carry a child manifest's digest must not count for the index.
        await store.blobLinks.link('r', amd64.digest, 123, at(0));
        await store.manifests.put({ ...amd64, repository: 'r', at: at(1000) });
        await store.manifests.put({ ...arm64, repository: 'r', at: at(1001) });
        await store.manifests.put({ ...image, repository: 'r', at: at(2000) });
        await store.manifests.put({ ...index, repository: 'r', tag: 'multi', at: at(3000) });
        await store.manifests.put({ ...sparse, repository: 'r', at: at(4000) });
        // The same platform manifest in another repository, without its index there.
        await store.manifests.put({ ...amd64, repository: 'other', tag: 'amd64', at: at(5000) });

        const summaries = async (repository: string) =>
          new Map((await store.manifests.list(repository)).map((s) => [s.digest, { ...s, children: [...s.children].sort(byteCompare) }]));
        let byDigest = await summaries('r');
        assert.equal(byDigest.size, 5);
        assert.deepEqual(byDigest.get(index.digest)?.children, [amd64.digest, arm64.digest].sort(byteCompare));
        assert.equal(byDigest.get(index.digest)?.inIndex, false);
        assert.equal(byDigest.get(index.digest)?.blobBytes, 0, 'child manifests are not blobs');
        assert.deepEqual(byDigest.get(index.digest)?.tags, ['multi']);
        assert.equal(byDigest.get(index.digest)?.mediaType, IMAGE_INDEX);
        assert.deepEqual(byDigest.get(sparse.digest)?.children, [missing]);
        for (const platform of [amd64, arm64]) {
          assert.equal(byDigest.get(platform.digest)?.inIndex, true, 'a platform manifest of an index here');
          assert.deepEqual(byDigest.get(platform.digest)?.children, []);
          assert.equal(byDigest.get(platform.digest)?.blobBytes, 0, "the child's own blobs are not linked");
        }
        assert.equal(byDigest.get(image.digest)?.inIndex, false);
        assert.deepEqual(byDigest.get(image.digest)?.children, []);
        assert.equal(byDigest.get(image.digest)?.blobBytes, 1010, 'a repeated layer counts once');
        const elsewhere = (await summaries('other')).get(amd64.digest);
        assert.equal(elsewhere?.inIndex, false, 'an index in another repository does not count');
        assert.deepEqual(elsewhere?.tags, ['amd64']);

        // Once the index is deleted, its platform manifests stand alone.
        assert.equal(await store.manifests.delete('r', index.digest), true);
        byDigest = await summaries('r');
        assert.equal(byDigest.get(amd64.digest)?.inIndex, false);
        assert.equal(byDigest.get(arm64.digest)?.inIndex, false);
        assert.deepEqual(byDigest.get(sparse.digest)?.children, [missing]);
      });

      it('referencesBlob is true only for blobs a manifest in that repository references', async () => {
        const image = manifest('refs image');
        const [config, layer] = image.references.blobs as [Digest, Digest];
        const child = manifest('refs child');
        const indexContent = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: child.digest }] }));
        const index: TestManifest = {
          digest: digestOf(indexContent),
          mediaType: IMAGE_INDEX,
          content: indexContent,
          references: { blobs: [], manifests: [child.digest] },
        };
        // Another image sharing the layer, with its own config.
        const sharedConfig = digestOf(Buffer.from('refs shared config'));
        const sibling = { ...manifest('refs sibling'), references: { blobs: [sharedConfig, layer], manifests: [] } };
        const linkedOnly = digestOf(Buffer.from('refs linked only'));

        await store.manifests.put({ ...image, repository: 'r', tag: 'latest', at: at(0) });
        await store.manifests.put({ ...sibling, repository: 'r', at: at(1000) });
        await store.manifests.put({ ...index, repository: 'r', at: at(2000) });
        await store.manifests.put({ ...child, repository: 'r', at: at(2000) });
        await store.blobLinks.link('r', linkedOnly, 10, at(0));
        await store.blobLinks.link('other', config, 10, at(0));

        assert.equal(await store.manifests.referencesBlob('r', config), true);
        assert.equal(await store.manifests.referencesBlob('r', layer), true);
        assert.equal(await store.manifests.referencesBlob('r', sharedConfig), true);
        assert.equal(await store.manifests.referencesBlob('r', child.digest), false, 'a child manifest is not a blob reference');
        assert.equal(await store.manifests.referencesBlob('r', index.digest), false, 'a manifest digest is not a blob reference');
        assert.equal(await store.manifests.referencesBlob('r', linkedOnly), false, 'linked but not referenced');
        assert.equal(await store.manifests.referencesBlob('r', digestOf(Buffer.from('unknown'))), false);
        assert.equal(await store.manifests.referencesBlob('other', config), false, 'only references in that repository count');
        assert.equal(await store.manifests.referencesBlob('nowhere', config), false);

        await store.manifests.put({ ...image, repository: 'other', at: at(3000) });
        assert.equal(await store.manifests.referencesBlob('other', config), true);
        assert.equal(await store.manifests.referencesBlob('other', sharedConfig), false);

        // Deleting a manifest drops its references; a blob another manifest still names stays referenced.
        assert.equal(await store.manifests.delete('r', image.digest), true);
        assert.equal(await store.manifests.referencesBlob('r', config), false);
        assert.equal(await store.manifests.referencesBlob('r', layer), true, 'still named by the sibling');
        assert.equal(await store.manifests.referencesBlob('other', config), true, 'the other repository keeps its own');
        assert.equal(await store.manifests.delete('r', sibling.digest), true);
        assert.equal(await store.manifests.referencesBlob('r', layer), false);
        assert.equal(await store.manifests.referencesBlob('r', sharedConfig), false);

        // Pushed again, its references come back.
        await store.manifests.put({ ...image, repository: 'r', at: at(4000) });
        assert.equal(await store.manifests.referencesBlob('r', config), true);
        assert.equal(await store.manifests.referencesBlob('r', layer), true);
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

      it('state gives the digest and when the tag was last checked; markChecked moves only that tag', async () => {
        const m = manifest('state m');
        const n = manifest('state n');
        await store.manifests.put({ ...m, repository: 'r', tag: 'latest', at: at(1000) });
        await store.manifests.put({ ...n, repository: 'r', tag: 'stable', at: at(2000) });
        await store.manifests.put({ ...m, repository: 'other', tag: 'latest', at: at(3000) });
        const state = async (repository: string, tag: string) => {
          const s = await store.tags.state(repository, tag);
          return s && defined(s);
        };

        // A push with a tag counts as a check, at the push time.
        assert.deepEqual(await state('r', 'latest'), { digest: m.digest, checkedAt: at(1000) });
        assert.deepEqual(await state('r', 'stable'), { digest: n.digest, checkedAt: at(2000) });
        assert.deepEqual(await state('other', 'latest'), { digest: m.digest, checkedAt: at(3000) });
        assert.equal(await state('r', 'missing'), undefined);
        assert.equal(await state('r', 'LATEST'), undefined);
        assert.equal(await state('nowhere', 'latest'), undefined);

        await store.tags.markChecked('r', 'latest', at(60_000));
        assert.deepEqual(await state('r', 'latest'), { digest: m.digest, checkedAt: at(60_000) });
        assert.deepEqual(await state('r', 'stable'), { digest: n.digest, checkedAt: at(2000) }, 'other tags untouched');
        assert.deepEqual(await state('other', 'latest'), { digest: m.digest, checkedAt: at(3000) }, 'other repositories untouched');
        // A check changes neither what the tag points at nor the manifest.
        assert.equal(await store.tags.resolve('r', 'latest'), m.digest);
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['latest', 'stable']);
        assert.equal((await store.manifests.get('r', m.digest))?.pushedAt.getTime(), at(1000).getTime());

        await store.tags.markChecked('r', 'latest', at(90_000));
        assert.deepEqual(await state('r', 'latest'), { digest: m.digest, checkedAt: at(90_000) });

        // Moving the tag by a push sets both.
        await store.manifests.put({ ...n, repository: 'r', tag: 'latest', at: at(120_000) });
        assert.deepEqual(await state('r', 'latest'), { digest: n.digest, checkedAt: at(120_000) });
        // Pushing the same digest with the tag again is a check too.
        await store.manifests.put({ ...n, repository: 'r', tag: 'latest', at: at(150_000) });
        assert.deepEqual(await state('r', 'latest'), { digest: n.digest, checkedAt: at(150_000) });
        // Pushing without a tag touches no tag.
        await store.manifests.put({ ...n, repository: 'r', at: at(180_000) });
        assert.deepEqual(await state('r', 'latest'), { digest: n.digest, checkedAt: at(150_000) });
        assert.deepEqual(await state('r', 'stable'), { digest: n.digest, checkedAt: at(2000) });

        // Checking what is not there creates nothing.
        await store.tags.markChecked('r', 'missing', at(200_000));
        await store.tags.markChecked('nowhere', 'latest', at(200_000));
        assert.equal(await state('r', 'missing'), undefined);
        assert.equal(await store.tags.resolve('r', 'missing'), undefined);
        assert.equal(await state('nowhere', 'latest'), undefined);
        assert.equal(await store.repositories.get('nowhere'), undefined);
        assert.deepEqual(await store.tags.list('r', { limit: 100 }), ['latest', 'stable']);

        // A deleted tag has no state; deleting its manifest removes the state of every tag on it.
        assert.equal(await store.tags.delete('r', 'stable'), true);
        assert.equal(await state('r', 'stable'), undefined);
        assert.equal(await store.manifests.delete('other', m.digest), true);
        assert.equal(await state('other', 'latest'), undefined);
        assert.deepEqual(await state('r', 'latest'), { digest: n.digest, checkedAt: at(150_000) });
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

      it('create makes a repository once, with its cache rule and settings', async () => {
        const settings: RepositorySettings = {
          imageTagMutability: 'IMMUTABLE',
          lifecyclePolicy: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}',
          scanOnPush: true,
          resourceTags: [
            { Key: 'team', Value: 'é 🐳' },
            { Key: 'empty', Value: '' },
          ],
          template: 'docker-hub',
        };
        assert.equal(await store.repositories.create('docker-hub/library/alpine', { cacheRule: 'docker-hub', settings }, at(0)), true);
        assert.deepEqual(await store.repositories.get('docker-hub/library/alpine'), {
          name: 'docker-hub/library/alpine',
          createdAt: at(0),
          cacheRule: 'docker-hub',
          settings,
        });

        // Idempotent: a second create changes nothing and says so.
        assert.equal(
          await store.repositories.create('docker-hub/library/alpine', { cacheRule: 'other-rule', settings: { scanOnPush: false } }, at(1000)),
          false,
        );
        assert.equal(await store.repositories.create('docker-hub/library/alpine', {}, at(2000)), false);
        assert.deepEqual(await store.repositories.get('docker-hub/library/alpine'), {
          name: 'docker-hub/library/alpine',
          createdAt: at(0),
          cacheRule: 'docker-hub',
          settings,
        });

        // Optional parts absent stay absent.
        assert.equal(await store.repositories.create('plain', {}, at(3000)), true);
        assert.deepEqual(await store.repositories.get('plain'), { name: 'plain', createdAt: at(3000) });
        assert.equal(await store.repositories.create('templated', { settings: { imageTagMutability: 'MUTABLE', template: 'ROOT' } }, at(4000)), true);
        assert.deepEqual(await store.repositories.get('templated'), {
          name: 'templated',
          createdAt: at(4000),
          settings: { imageTagMutability: 'MUTABLE', template: 'ROOT' },
        });
        assert.equal(await store.repositories.create('ruled/only', { cacheRule: 'ruled' }, at(5000)), true);
        assert.deepEqual(await store.repositories.get('ruled/only'), { name: 'ruled/only', createdAt: at(5000), cacheRule: 'ruled' });

        // Created repositories are listed and start empty; no parent is implied.
        assert.deepEqual(await store.repositories.list({ limit: 100 }), ['docker-hub/library/alpine', 'plain', 'ruled/only', 'templated']);
        assert.equal(await store.repositories.get('docker-hub'), undefined);
        assert.equal(await store.repositories.get('docker-hub/library'), undefined);
        assert.deepEqual(await store.tags.list('plain', { limit: 100 }), []);
        assert.deepEqual(await store.manifests.list('plain'), []);

        // A repository that exists because of a push is not taken over by a later create.
        await store.manifests.put({ ...manifest('pushed first'), repository: 'pushed', at: at(6000) });
        assert.equal(await store.repositories.create('pushed', { cacheRule: 'docker-hub', settings }, at(7000)), false);
        assert.deepEqual(await store.repositories.get('pushed'), { name: 'pushed', createdAt: at(6000) });

        // Pushes and links into a created repository keep what create recorded.
        const m = manifest('into created');
        await store.manifests.put({ ...m, repository: 'docker-hub/library/alpine', tag: 'latest', at: at(8000) });
        await store.blobLinks.link('plain', digestOf(Buffer.from('into plain')), 1, at(8000));
        assert.deepEqual(await store.repositories.get('docker-hub/library/alpine'), {
          name: 'docker-hub/library/alpine',
          createdAt: at(0),
          cacheRule: 'docker-hub',
          settings,
        });
        assert.deepEqual(await store.repositories.get('plain'), { name: 'plain', createdAt: at(3000) });
        assert.equal(await store.tags.resolve('docker-hub/library/alpine', 'latest'), m.digest);
      });

      it('create returns true to exactly one of several concurrent callers', async () => {
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.repositories.create('raced', { cacheRule: `rule-${i}` }, at(i))),
        );
        assert.equal(results.filter((created) => created).length, 1, `results: ${results.join(', ')}`);
        const winner = results.indexOf(true);
        assert.deepEqual(await store.repositories.get('raced'), { name: 'raced', createdAt: at(winner), cacheRule: `rule-${winner}` });
        assert.deepEqual(await store.repositories.list({ limit: 100 }), ['raced']);
      });

      it('updateSettings replaces the settings of an existing repository, and only of that one', async () => {
        const original: RepositorySettings = { imageTagMutability: 'MUTABLE', scanOnPush: true, template: 'docker-hub' };
        await store.repositories.create('r', { cacheRule: 'docker-hub', settings: original }, at(0));
        await store.repositories.create('s', { settings: original }, at(0));

        const next: RepositorySettings = {
          imageTagMutability: 'IMMUTABLE',
          lifecyclePolicy: '{"rules":[]}',
          resourceTags: [{ Key: 'k', Value: 'v' }],
        };
        assert.equal(await store.repositories.updateSettings('r', next), true);
        // Replaced, not merged; the rule and creation time stay.
        assert.deepEqual(await store.repositories.get('r'), { name: 'r', createdAt: at(0), cacheRule: 'docker-hub', settings: next });
        assert.deepEqual(await store.repositories.get('s'), { name: 's', createdAt: at(0), settings: original });

        // A repository created by a push gains settings.
        await store.manifests.put({ ...manifest('settings pushed'), repository: 'pushed', at: at(1000) });
        assert.equal(await store.repositories.updateSettings('pushed', { scanOnPush: false }), true);
        assert.deepEqual(await store.repositories.get('pushed'), { name: 'pushed', createdAt: at(1000), settings: { scanOnPush: false } });

        // Updating again with the same settings still reports the repository exists.
        assert.equal(await store.repositories.updateSettings('pushed', { scanOnPush: false }), true);
        // Empty settings (nothing set) read back as nothing set.
        assert.equal(await store.repositories.updateSettings('r', {}), true);
        assert.deepEqual((await store.repositories.get('r'))?.settings ?? {}, {});
        assert.equal((await store.repositories.get('r'))?.cacheRule, 'docker-hub');

        // An unknown repository: false, and nothing is created.
        assert.equal(await store.repositories.updateSettings('nowhere', next), false);
        assert.equal(await store.repositories.get('nowhere'), undefined);
        assert.equal(await store.repositories.updateSettings('r/', next), false);
        assert.deepEqual(await store.repositories.list({ limit: 100 }), ['pushed', 'r', 's']);
      });

      it('delete removes the repository with its manifests, tags and blob links, and nothing of other repositories', async () => {
        const m = manifest('doomed m');
        const n = manifest('doomed n', { mediaType: IMAGE_INDEX });
        const referrer = manifest('doomed referrer', { subject: m.digest, artifactType: 'application/spdx+json' });
        const [mConfig, mLayer] = m.references.blobs as [Digest, Digest];
        const linkedOnly = digestOf(Buffer.from('doomed linked only'));
        // Names around 'doomed' that a careless prefix match would catch.
        const neighbours = ['doomed-sibling', 'doomed/child', 'doomed0', 'kept'];

        for (const name of neighbours) {
          await store.manifests.put({ ...m, repository: name, tag: 'latest', at: at(4000) });
          await store.manifests.put({ ...referrer, repository: name, at: at(4000) });
          await store.blobLinks.link(name, mConfig, 2, at(4000));
          await store.blobLinks.link(name, mLayer, 32, at(4000));
        }
        // Created last, so a driver that numbers repositories could reuse its number when it is pushed again.
        await store.repositories.create('doomed', { cacheRule: 'rule', settings: { scanOnPush: true } }, at(0));
        await store.manifests.put({ ...m, repository: 'doomed', tag: 'latest', at: at(1000) });
        await store.manifests.put({ ...n, repository: 'doomed', tag: 'v1', at: at(2000) });
        await store.manifests.put({ ...referrer, repository: 'doomed', at: at(3000) });
        await store.blobLinks.link('doomed', mConfig, 2, at(1000));
        await store.blobLinks.link('doomed', mLayer, 32, at(1000));
        await store.blobLinks.link('doomed', linkedOnly, 7, at(1000));
        await store.manifests.recordPulls([{ repository: 'doomed', digest: m.digest, at: at(3500) }]);

        assert.equal(await store.repositories.delete('doomed'), true);

        assert.equal(await store.repositories.get('doomed'), undefined);
        assert.deepEqual(await store.repositories.list({ limit: 100 }), byteSorted(neighbours));
        for (const digest of [m.digest, n.digest, referrer.digest]) {
          assert.equal(await store.manifests.get('doomed', digest), undefined);
        }
        assert.deepEqual(await store.manifests.list('doomed'), []);
        assert.deepEqual(await store.manifests.referrers('doomed', m.digest), []);
        assert.equal(await store.tags.resolve('doomed', 'latest'), undefined);
        assert.equal(await store.tags.resolve('doomed', 'v1'), undefined);
        assert.equal(await store.tags.state('doomed', 'latest'), undefined);
        assert.deepEqual(await store.tags.list('doomed', { limit: 100 }), []);
        for (const digest of [mConfig, mLayer, linkedOnly]) {
          assert.equal(await store.blobLinks.get('doomed', digest), undefined);
          assert.equal(await store.manifests.referencesBlob('doomed', digest), false);
        }

        for (const name of neighbours) {
          assert.equal((await store.repositories.get(name))?.createdAt.getTime(), at(4000).getTime(), name);
          assert.ok((await store.manifests.get(name, m.digest))?.content.equals(m.content), name);
          assert.equal(await store.tags.resolve(name, 'latest'), m.digest, name);
          assert.equal(await store.blobLinks.get(name, mConfig), 2, name);
          assert.equal(await store.blobLinks.get(name, mLayer), 32, name);
          assert.equal(await store.manifests.referencesBlob(name, mLayer), true, name);
          assert.equal((await store.manifests.referrers(name, m.digest)).length, 1, name);
          assert.deepEqual(
            (await store.manifests.list(name)).map((s) => [s.digest, s.tags, s.blobBytes]),
            [m.digest, referrer.digest].sort(byteCompare).map((d) => (d === m.digest ? [d, ['latest'], 34] : [d, [], 0])),
            name,
          );
        }

        assert.equal(await store.repositories.delete('doomed'), false);
        assert.equal(await store.repositories.delete('nowhere'), false);
        assert.equal(await store.repositories.delete('doomed/'), false);
        assert.deepEqual(await store.repositories.list({ limit: 100 }), byteSorted(neighbours));

        // A push afterwards starts a new repository: nothing of the old one comes back.
        await store.manifests.put({ ...m, repository: 'doomed', at: at(10_000) });
        assert.deepEqual(await store.repositories.get('doomed'), { name: 'doomed', createdAt: at(10_000) });
        assert.equal((await store.manifests.get('doomed', m.digest))?.pushedAt.getTime(), at(10_000).getTime());
        assert.deepEqual(await store.tags.list('doomed', { limit: 100 }), []);
        assert.equal(await store.blobLinks.get('doomed', mLayer), undefined);
        assert.deepEqual((await store.manifests.list('doomed')).map((s) => s.blobBytes), [0]);
        assert.equal((await store.manifests.get('doomed', m.digest))?.lastPulledAt, undefined);
        assert.deepEqual(await store.manifests.referrers('doomed', m.digest), []);
        assert.equal(await store.manifests.get('doomed', n.digest), undefined);
        assert.equal(await store.manifests.referencesBlob('doomed', mLayer), true, 'referenced again by the new push');
        assert.equal(await store.manifests.referencesBlob('doomed', linkedOnly), false);

        // And create works again after a delete.
        assert.equal(await store.repositories.delete('doomed'), true);
        assert.equal(await store.repositories.create('doomed', { cacheRule: 'another' }, at(20_000)), true);
        assert.deepEqual(await store.repositories.get('doomed'), { name: 'doomed', createdAt: at(20_000), cacheRule: 'another' });
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

    describe('garbage-collection queries', () => {
      it('unreferenced: old links no manifest of their repository references; liveDigests and isLive; storedBytes', async () => {
        const used = manifest('gc-used');
        const [config, layer] = used.references.blobs as [Digest, Digest];
        const orphanOld = digestOf(Buffer.from('orphan old'));
        const orphanNew = digestOf(Buffer.from('orphan new'));
        const elsewhere = digestOf(Buffer.from('used elsewhere'));
        await store.blobLinks.link('gc/a', config, 2, at(0));
        await store.blobLinks.link('gc/a', layer, 32, at(0));
        await store.blobLinks.link('gc/a', orphanOld, 1000, at(0));
        await store.blobLinks.link('gc/a', orphanNew, 500, at(10_000));
        await store.blobLinks.link('gc/b', layer, 32, at(0));
        await store.repositories.create('gc/cache', { cacheRule: 'hub' }, at(0));
        await store.blobLinks.link('gc/cache', elsewhere, 7, at(0));
        await store.manifests.put({ ...used, repository: 'gc/a', tag: 'v1', at: at(1) });

        const stale = (await store.blobLinks.unreferenced(at(5_000))).map((l) => `${l.repository} ${l.digest}`).sort();
        assert.deepEqual(stale, [`gc/a ${orphanOld}`, `gc/b ${layer}`, `gc/cache ${elsewhere}`].sort());

        const live = await store.blobLinks.liveDigests(at(5_000));
        assert.ok(live.has(config) && live.has(layer), 'referenced by a manifest');
        assert.ok(live.has(orphanNew), 'linked within the grace period');
        assert.ok(!live.has(orphanOld) && !live.has(elsewhere));
        assert.equal(await store.blobLinks.isLive(orphanOld), true, 'any link keeps it live until unlinked');
        await store.blobLinks.unlink('gc/a', orphanOld);
        assert.equal(await store.blobLinks.isLive(orphanOld), false);
        assert.equal(await store.blobLinks.isLive(layer), true);

        assert.equal(await store.blobLinks.storedBytes(), 2 + 32 + 500 + 7, 'distinct blobs across repositories');
        assert.equal(await store.blobLinks.storedBytes('hub'), 7);
        assert.equal(await store.blobLinks.storedBytes('none'), 0);
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

    describe('secrets', () => {
      /** Bytes a sealed secret might hold: every byte value, including NUL and invalid UTF-8. */
      const sealed = (seed: number, length = 300) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) % 256));
      const secrets = async (options?: { includeScheduled?: boolean }) =>
        (await store.secrets.list(options)).map(defined).sort((a, b) => byteCompare(a.name, b.name));

      it('put, get, find, list and delete; ciphertext round-trips byte for byte', async () => {
        const hub = { name: 'ecr-pullthroughcache/docker-hub', ciphertext: sealed(1), description: 'Docker Hub é 🐳' };
        const ghcr = { name: 'ecr-pullthroughcache/ghcr', ciphertext: sealed(2, 17) };
        await store.secrets.put(hub, at(0));
        await store.secrets.put(ghcr, at(1000));

        const expectedHub: SecretRecord = { ...hub, createdAt: at(0), updatedAt: at(0) };
        const expectedGhcr: SecretRecord = { ...ghcr, createdAt: at(1000), updatedAt: at(1000) };
        const got = await store.secrets.get(hub.name);
        assert.ok(got);
        assert.ok(Buffer.isBuffer(got.ciphertext), 'ciphertext is a Buffer');
        assert.ok(got.ciphertext.equals(hub.ciphertext), 'ciphertext byte for byte');
        assert.deepEqual(defined(got), expectedHub);
        assert.equal(got.deletionDate, undefined, 'not scheduled');
        assert.deepEqual(defined((await store.secrets.find(hub.name))!), expectedHub);
        const gotGhcr = await store.secrets.get(ghcr.name);
        assert.ok(gotGhcr);
        assert.equal(gotGhcr.description, undefined, 'no description given, none read back');
        assert.deepEqual(defined(gotGhcr), expectedGhcr);
        assert.equal(await store.secrets.get('ecr-pullthroughcache/DOCKER-HUB'), undefined, 'names are case-sensitive');
        assert.equal(await store.secrets.get('ecr-pullthroughcache/'), undefined);
        assert.deepEqual(await secrets(), [expectedHub, expectedGhcr]);
        assert.deepEqual(await secrets({ includeScheduled: true }), [expectedHub, expectedGhcr]);

        // Replacing: new ciphertext and description, updatedAt moves, createdAt stays.
        const rotated = sealed(3, 64);
        await store.secrets.put({ name: hub.name, ciphertext: rotated, description: 'rotated' }, at(60_000));
        const replaced = await store.secrets.get(hub.name);
        assert.ok(replaced);
        assert.ok(replaced.ciphertext.equals(rotated));
        assert.deepEqual(defined(replaced), { name: hub.name, ciphertext: rotated, description: 'rotated', createdAt: at(0), updatedAt: at(60_000) });
        // A put without a description leaves none.
        await store.secrets.put({ name: hub.name, ciphertext: rotated }, at(90_000));
        const undescribed = await store.secrets.get(hub.name);
        assert.equal(undescribed?.description, undefined);
        assert.deepEqual(defined(undescribed!), { name: hub.name, ciphertext: rotated, createdAt: at(0), updatedAt: at(90_000) });
        assert.deepEqual(await store.secrets.get(ghcr.name).then((s) => s && defined(s)), expectedGhcr, 'the other secret untouched');

        assert.equal(await store.secrets.delete(hub.name), true);
        assert.equal(await store.secrets.get(hub.name), undefined);
        assert.equal(await store.secrets.find(hub.name), undefined);
        assert.equal(await store.secrets.delete(hub.name), false);
        assert.equal(await store.secrets.delete('ecr-pullthroughcache/nothing'), false);
        assert.deepEqual(await secrets(), [expectedGhcr]);

        // Created again after a delete, it is new.
        await store.secrets.put(hub, at(120_000));
        assert.deepEqual(defined((await store.secrets.get(hub.name))!), { ...hub, createdAt: at(120_000), updatedAt: at(120_000) });
      });

      it('a secret scheduled for deletion is hidden from get and list but found by find; put revives it', async () => {
        const names = ['a', 'b', 'c'].map((x) => `ecr-pullthroughcache/${x}`) as [string, string, string];
        for (const [i, name] of names.entries()) await store.secrets.put({ name, ciphertext: sealed(i), description: `secret ${i}` }, at(i));
        const deletionDate = at(30 * 86_400_000);
        await store.secrets.scheduleDeletion(names[0], deletionDate);

        assert.equal(await store.secrets.get(names[0]), undefined, 'a scheduled secret cannot be used');
        const found = await store.secrets.find(names[0]);
        assert.ok(found);
        assert.equal(found.deletionDate?.getTime(), deletionDate.getTime());
        assert.ok(found.ciphertext.equals(sealed(0)), 'ciphertext kept while scheduled');
        assert.equal(found.description, 'secret 0');
        assert.equal(found.createdAt.getTime(), at(0).getTime());
        assert.equal((await store.secrets.find(names[1]))?.deletionDate, undefined);

        assert.deepEqual((await secrets()).map((s) => s.name), [names[1], names[2]]);
        assert.deepEqual((await secrets({ includeScheduled: false })).map((s) => s.name), [names[1], names[2]]);
        const all = await secrets({ includeScheduled: true });
        assert.deepEqual(all.map((s) => s.name), names);
        assert.equal(all[0]!.deletionDate?.getTime(), deletionDate.getTime());
        assert.ok(all[0]!.ciphertext.equals(sealed(0)));
        assert.equal(all[1]!.deletionDate, undefined);
        assert.equal(all[2]!.deletionDate, undefined);

        // Scheduling a name that does not exist creates nothing.
        await store.secrets.scheduleDeletion('ecr-pullthroughcache/ghost', deletionDate);
        assert.equal(await store.secrets.find('ecr-pullthroughcache/ghost'), undefined);
        assert.equal((await secrets({ includeScheduled: true })).length, 3);

        // Putting the name again revives it, with the new value and no deletion date.
        const revived = sealed(9, 40);
        await store.secrets.put({ name: names[0], ciphertext: revived }, at(60_000));
        const back = await store.secrets.get(names[0]);
        assert.ok(back, 'usable again');
        assert.ok(back.ciphertext.equals(revived));
        assert.equal(back.deletionDate, undefined);
        assert.equal(back.description, undefined);
        assert.equal(back.updatedAt.getTime(), at(60_000).getTime());
        assert.equal((await store.secrets.find(names[0]))?.deletionDate, undefined);
        assert.deepEqual((await secrets()).map((s) => s.name), names);
        // Reviving it is not purged by the old date.
        assert.equal(await store.secrets.purgeDeleted(at(365 * 86_400_000)), 0);
        assert.ok(await store.secrets.get(names[0]));

        // delete removes a scheduled secret at once.
        await store.secrets.scheduleDeletion(names[1], deletionDate);
        assert.equal(await store.secrets.delete(names[1]), true);
        assert.equal(await store.secrets.find(names[1]), undefined);
        assert.deepEqual((await secrets({ includeScheduled: true })).map((s) => s.name), [names[0], names[2]]);
      });

      it('purgeDeleted removes only secrets whose deletion date has passed, and counts them', async () => {
        const names = ['a', 'b', 'c', 'd'].map((x) => `ecr-pullthroughcache/${x}`) as [string, string, string, string];
        for (const [i, name] of names.entries()) await store.secrets.put({ name, ciphertext: sealed(i) }, at(0));
        await store.secrets.scheduleDeletion(names[0], at(1000));
        await store.secrets.scheduleDeletion(names[1], at(2000));
        await store.secrets.scheduleDeletion(names[2], at(5000));
        // names[3] is never scheduled.

        assert.equal(await store.secrets.purgeDeleted(at(500)), 0);
        assert.equal((await secrets({ includeScheduled: true })).length, 4);

        assert.equal(await store.secrets.purgeDeleted(at(2500)), 2);
        assert.equal(await store.secrets.find(names[0]), undefined);
        assert.equal(await store.secrets.find(names[1]), undefined);
        assert.equal((await store.secrets.find(names[2]))?.deletionDate?.getTime(), at(5000).getTime(), 'not yet due');
        assert.ok(await store.secrets.get(names[3]));
        assert.equal(await store.secrets.purgeDeleted(at(2500)), 0, 'nothing left to purge');

        assert.equal(await store.secrets.purgeDeleted(at(1_000_000)), 1);
        assert.equal(await store.secrets.find(names[2]), undefined);
        assert.deepEqual((await secrets({ includeScheduled: true })).map((s) => s.name), [names[3]]);
        assert.ok((await store.secrets.get(names[3]))?.ciphertext.equals(sealed(3)), 'a secret never scheduled is never purged');
      });
    });

    describe('cache rules', () => {
      const rules = async () => (await store.cacheRules.list()).map(defined);

      it('put, get, list in prefix order, delete; createdAt survives a replace', async () => {
        const hub: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'> = {
          prefix: 'docker-hub',
          upstreamUrl: 'https://registry-1.docker.io',
          upstreamKind: 'docker-hub',
          upstreamPrefix: 'library',
          credentialSecret: 'ecr-pullthroughcache/docker-hub',
          settings: { freshnessSeconds: 300, concurrency: { upstream: 8, perBlob: 1 }, names: ['é', '🐳'], negative: false, none: null, ratio: 0.5 },
          source: 'config',
        };
        const ghcr: Omit<CacheRuleRecord, 'createdAt' | 'updatedAt'> = {
          prefix: 'ghcr',
          upstreamUrl: 'https://ghcr.io',
          upstreamKind: 'github-container-registry',
          settings: {},
          source: 'api',
        };
        // Prefixes that sort differently by bytes than by most collations.
        const others = ['quay', 'Docker', 'docker', 'docker-hub-mirror', 'docker_hub'].map((prefix) => ({
          prefix,
          upstreamUrl: `https://${prefix.toLowerCase()}.example`,
          upstreamKind: 'generic',
          settings: { freshnessSeconds: 60 },
          source: 'api' as const,
        }));

        await store.cacheRules.put(hub, at(0));
        await store.cacheRules.put(ghcr, at(1000));
        for (const rule of others) await store.cacheRules.put(rule, at(2000));

        assert.deepEqual(defined((await store.cacheRules.get('docker-hub'))!), { ...hub, createdAt: at(0), updatedAt: at(0) });
        const gotGhcr = await store.cacheRules.get('ghcr');
        assert.ok(gotGhcr);
        assert.equal(gotGhcr.upstreamPrefix, undefined, 'absent upstreamPrefix stays absent');
        assert.equal(gotGhcr.credentialSecret, undefined, 'absent credentialSecret stays absent');
        assert.deepEqual(defined(gotGhcr), { ...ghcr, createdAt: at(1000), updatedAt: at(1000) });
        assert.equal(await store.cacheRules.get('docker-hub/library'), undefined, 'get matches the prefix exactly');
        assert.equal(await store.cacheRules.get('DOCKER-HUB'), undefined);

        const listed = await rules();
        assert.deepEqual(
          listed.map((r) => r.prefix),
          byteSorted(['docker-hub', 'ghcr', ...others.map((r) => r.prefix)]),
        );
        assert.deepEqual(listed.find((r) => r.prefix === 'docker-hub'), { ...hub, createdAt: at(0), updatedAt: at(0) });

        // Replace: every field replaced (optional ones dropped when not given), createdAt kept, updatedAt moves.
        const replacement = {
          prefix: 'docker-hub',
          upstreamUrl: 'https://mirror.gcr.io',
          upstreamKind: 'docker-hub',
          settings: { freshnessSeconds: 30 },
          source: 'api' as const,
        };
        await store.cacheRules.put(replacement, at(60_000));
        const replaced = await store.cacheRules.get('docker-hub');
        assert.ok(replaced);
        assert.equal(replaced.upstreamPrefix, undefined);
        assert.equal(replaced.credentialSecret, undefined);
        assert.deepEqual(defined(replaced), { ...replacement, createdAt: at(0), updatedAt: at(60_000) });
        // And the other way: optional fields added by a replace.
        await store.cacheRules.put({ ...ghcr, upstreamPrefix: 'org', credentialSecret: 'ecr-pullthroughcache/ghcr', settings: { a: [1, { b: 'c' }] } }, at(90_000));
        assert.deepEqual(defined((await store.cacheRules.get('ghcr'))!), {
          ...ghcr,
          upstreamPrefix: 'org',
          credentialSecret: 'ecr-pullthroughcache/ghcr',
          settings: { a: [1, { b: 'c' }] },
          createdAt: at(1000),
          updatedAt: at(90_000),
        });
        assert.equal((await rules()).length, 2 + others.length, 'a replace adds no rule');

        assert.equal(await store.cacheRules.delete('ghcr'), true);
        assert.equal(await store.cacheRules.get('ghcr'), undefined);
        assert.equal(await store.cacheRules.delete('ghcr'), false);
        assert.equal(await store.cacheRules.delete('nowhere'), false);
        assert.deepEqual(
          (await rules()).map((r) => r.prefix),
          byteSorted(['docker-hub', ...others.map((r) => r.prefix)]),
        );
        assert.ok(await store.cacheRules.get('docker-hub'), 'other rules untouched');

        // Put again after a delete, it is new.
        await store.cacheRules.put(ghcr, at(120_000));
        assert.deepEqual(defined((await store.cacheRules.get('ghcr'))!), { ...ghcr, createdAt: at(120_000), updatedAt: at(120_000) });
      });
    });

    describe('creation templates', () => {
      it('put, list in prefix order, delete; createdAt survives a replace', async () => {
        const root: Omit<CreationTemplateRecord, 'createdAt' | 'updatedAt'> = {
          prefix: 'ROOT',
          body: {
            appliedFor: ['PULL_THROUGH_CACHE', 'REPLICATION'],
            imageTagMutability: 'IMMUTABLE',
            lifecyclePolicy: '{"rules":[]}',
            resourceTags: [{ Key: 'team', Value: 'é 🐳' }],
            encryptionConfiguration: { encryptionType: 'AES256' },
            description: '',
            count: 3,
            flag: false,
            none: null,
          },
          source: 'config',
        };
        const hub = { prefix: 'docker-hub', body: { appliedFor: ['PULL_THROUGH_CACHE'] }, source: 'api' as const };
        const hubLibrary = { prefix: 'docker-hub/library', body: { appliedFor: ['PULL_THROUGH_CACHE'], imageTagMutability: 'MUTABLE' }, source: 'api' as const };
        const hubDash = { prefix: 'docker-hub-x', body: {}, source: 'api' as const };

        await store.templates.put(hubLibrary, at(0));
        await store.templates.put(root, at(1000));
        await store.templates.put(hub, at(2000));
        await store.templates.put(hubDash, at(3000));

        const expected: CreationTemplateRecord[] = [
          { ...root, createdAt: at(1000), updatedAt: at(1000) },
          { ...hub, createdAt: at(2000), updatedAt: at(2000) },
          { ...hubDash, createdAt: at(3000), updatedAt: at(3000) },
          { ...hubLibrary, createdAt: at(0), updatedAt: at(0) },
        ];
        assert.deepEqual(expected.map((t) => t.prefix), byteSorted(expected.map((t) => t.prefix)));
        assert.deepEqual(await store.templates.list(), expected);

        // Replace: the body is replaced (not merged), source too; createdAt kept, updatedAt moves.
        await store.templates.put({ prefix: 'ROOT', body: { appliedFor: ['REPLICATION'] }, source: 'api' }, at(60_000));
        assert.deepEqual(await store.templates.list(), [
          { prefix: 'ROOT', body: { appliedFor: ['REPLICATION'] }, source: 'api', createdAt: at(1000), updatedAt: at(60_000) },
          ...expected.slice(1),
        ]);

        assert.equal(await store.templates.delete('docker-hub'), true);
        assert.equal(await store.templates.delete('docker-hub'), false);
        assert.equal(await store.templates.delete('nowhere'), false);
        assert.equal(await store.templates.delete('docker'), false, 'delete matches the prefix exactly');
        assert.deepEqual(
          (await store.templates.list()).map((t) => t.prefix),
          ['ROOT', 'docker-hub-x', 'docker-hub/library'],
        );

        // Put again after a delete, it is new.
        await store.templates.put(hub, at(90_000));
        assert.deepEqual(
          (await store.templates.list()).find((t) => t.prefix === 'docker-hub'),
          { ...hub, createdAt: at(90_000), updatedAt: at(90_000) },
        );
      });
    });

    describe('locks', () => {
      it('runs the holders of one name one at a time, in order, and other names meanwhile', async () => {
        const events: string[] = [];
        const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
        const hold = (name: string, label: string, ms: number) =>
          store.locks.with(name, async () => {
            events.push(`${label} in`);
            await sleep(ms);
            events.push(`${label} out`);
            return label;
          });
        const first = hold('manifest:a', 'a1', 80);
        await sleep(20);
        const results = await Promise.all([first, hold('manifest:a', 'a2', 10), hold('manifest:b', 'b', 10)]);
        assert.deepEqual(results, ['a1', 'a2', 'b']);
        assert.ok(events.indexOf('b out') < events.indexOf('a1 out'), 'another name did not wait');
        assert.ok(events.indexOf('a1 out') < events.indexOf('a2 in'), 'the same name did not wait');
      });

      it('lets go of a lock whose work failed', async () => {
        await assert.rejects(store.locks.with('manifest:x', async () => Promise.reject(new Error('boom'))), /boom/);
        assert.equal(await store.locks.with('manifest:x', async () => 'next'), 'next');
      });
    });

    describe('identities', () => {
      const policy = [
        { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecr:*', 'secretsmanager:*'], Resource: '*' }] },
        {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Deny',
              Action: 'ecr:DeleteRepository',
              Resource: 'arn:aws:ecr:*:*:repository/prod/*',
              Condition: { StringEquals: { 'aws:username': 'é 🐳' }, Bool: { flag: true }, Numeric: { n: 1.5 } },
            },
          ],
        },
      ];
      /** Sealed bytes: every byte value, including NUL and invalid UTF-8. */
      const sealed = (seed: number) => Buffer.from(Array.from({ length: 60 }, (_, i) => (i * 13 + seed) % 256));
      const users = async () => (await store.identities.listUsers()).sort((a, b) => byteCompare(a.name, b.name));
      const keys = async (userName: string) => (await store.identities.listKeys(userName)).sort((a, b) => byteCompare(a.id, b.id));

      it('users: put, get, list, delete; the policy round-trips and createdAt survives a replace', async () => {
        await store.identities.putUser({ name: 'admin', policy }, at(0));
        await store.identities.putUser({ name: 'ci', policy: [] }, at(1000));

        const admin: UserRecord = { name: 'admin', policy, createdAt: at(0) };
        const ci: UserRecord = { name: 'ci', policy: [], createdAt: at(1000) };
        assert.deepEqual(await store.identities.getUser('admin'), admin);
        assert.deepEqual(await store.identities.getUser('ci'), ci);
        assert.equal(await store.identities.getUser('ADMIN'), undefined, 'names are case-sensitive');
        assert.equal(await store.identities.getUser('nobody'), undefined);
        assert.deepEqual(await users(), [admin, ci]);

        // Replace: the policy changes, createdAt stays.
        await store.identities.putUser({ name: 'admin', policy: [{ Statement: [] }] }, at(60_000));
        assert.deepEqual(await store.identities.getUser('admin'), { name: 'admin', policy: [{ Statement: [] }], createdAt: at(0) });
        assert.equal((await users()).length, 2);

        assert.equal(await store.identities.deleteUser('ci'), true);
        assert.equal(await store.identities.getUser('ci'), undefined);
        assert.equal(await store.identities.deleteUser('ci'), false);
        assert.equal(await store.identities.deleteUser('nobody'), false);
        assert.deepEqual((await users()).map((u) => u.name), ['admin']);
      });

      it('access keys: put, get, listKeys, deleteKey; sealed secret bytes exact, active flag', async () => {
        await store.identities.putUser({ name: 'alice', policy }, at(0));
        await store.identities.putUser({ name: 'bob', policy: [] }, at(0));
        const k1 = { id: 'CKIAAAAAAAAAAAAAAAA1', userName: 'alice', sealedSecret: sealed(1), active: true };
        const k2 = { id: 'CKIAAAAAAAAAAAAAAAA2', userName: 'alice', sealedSecret: sealed(2), active: false };
        const k3 = { id: 'CKIABBBBBBBBBBBBBBB3', userName: 'bob', sealedSecret: sealed(3), active: true };
        await store.identities.putKey(k1, at(1000));
        await store.identities.putKey(k2, at(2000));
        await store.identities.putKey(k3, at(3000));

        const got = await store.identities.getKey(k1.id);
        assert.ok(got);
        assert.ok(Buffer.isBuffer(got.sealedSecret), 'sealedSecret is a Buffer');
        assert.ok(got.sealedSecret.equals(k1.sealedSecret), 'sealedSecret byte for byte');
        const e1: AccessKeyRecord = { ...k1, createdAt: at(1000) };
        const e2: AccessKeyRecord = { ...k2, createdAt: at(2000) };
        const e3: AccessKeyRecord = { ...k3, createdAt: at(3000) };
        assert.deepEqual(got, e1);
        assert.deepEqual(await store.identities.getKey(k2.id), e2);
        assert.equal((await store.identities.getKey(k2.id))?.active, false, 'an inactive key reads back inactive');
        assert.deepEqual(await store.identities.getKey(k3.id), e3);
        assert.equal(await store.identities.getKey('CKIAAAAAAAAAAAAAAAA9'), undefined);
        assert.equal(await store.identities.getKey(k1.id.toLowerCase()), undefined, 'ids are case-sensitive');

        assert.deepEqual(await keys('alice'), [e1, e2]);
        assert.deepEqual(await keys('bob'), [e3]);
        assert.deepEqual(await keys('nobody'), []);

        // Deactivating and reactivating by putting the key again; createdAt stays.
        await store.identities.putKey({ ...k1, active: false }, at(60_000));
        assert.deepEqual(await store.identities.getKey(k1.id), { ...e1, active: false });
        assert.ok((await store.identities.getKey(k1.id))?.sealedSecret.equals(k1.sealedSecret));
        await store.identities.putKey({ ...k2, active: true }, at(60_000));
        assert.deepEqual(await store.identities.getKey(k2.id), { ...e2, active: true });
        assert.deepEqual(await store.identities.getKey(k3.id), e3, 'other keys untouched');
        assert.equal((await keys('alice')).length, 2, 'a replace adds no key');

        assert.equal(await store.identities.deleteKey(k2.id), true);
        assert.equal(await store.identities.getKey(k2.id), undefined);
        assert.equal(await store.identities.deleteKey(k2.id), false);
        assert.equal(await store.identities.deleteKey('CKIAAAAAAAAAAAAAAAA9'), false);
        assert.deepEqual(await keys('alice'), [{ ...e1, active: false }]);
        assert.deepEqual(await keys('bob'), [e3]);
        assert.ok(await store.identities.getUser('alice'), 'deleting a key keeps its user');
      });

      it('login tokens: put, get, deleteExpiredLoginTokens removes only expired ones and counts them', async () => {
        await store.identities.putUser({ name: 'alice', policy }, at(0));
        await store.identities.putUser({ name: 'bob', policy: [] }, at(0));
        const hash = (s: string) => digestOf(Buffer.from(s)).slice('sha256:'.length);
        const [h1, h2, h3, h4] = ['one', 'two', 'three', 'four'].map(hash) as [string, string, string, string];
        const twelveHours = 12 * 3_600_000;
        await store.identities.putLoginToken(h1, 'alice', at(1000));
        await store.identities.putLoginToken(h2, 'alice', at(2000));
        await store.identities.putLoginToken(h3, 'bob', at(3000));
        await store.identities.putLoginToken(h4, 'bob', at(twelveHours));

        assert.deepEqual(await store.identities.getLoginToken(h1), { userName: 'alice', expiresAt: at(1000) });
        assert.deepEqual(await store.identities.getLoginToken(h3), { userName: 'bob', expiresAt: at(3000) });
        assert.deepEqual(await store.identities.getLoginToken(h4), { userName: 'bob', expiresAt: at(twelveHours) });
        assert.equal(await store.identities.getLoginToken(hash('unknown')), undefined);
        assert.equal(await store.identities.getLoginToken(h1.toUpperCase()), undefined);

        assert.equal(await store.identities.deleteExpiredLoginTokens(at(0)), 0);
        for (const h of [h1, h2, h3, h4]) assert.ok(await store.identities.getLoginToken(h));

        assert.equal(await store.identities.deleteExpiredLoginTokens(at(2500)), 2);
        assert.equal(await store.identities.getLoginToken(h1), undefined);
        assert.equal(await store.identities.getLoginToken(h2), undefined);
        assert.deepEqual(await store.identities.getLoginToken(h3), { userName: 'bob', expiresAt: at(3000) });
        assert.equal(await store.identities.deleteExpiredLoginTokens(at(2500)), 0, 'nothing left to delete');

        assert.equal(await store.identities.deleteExpiredLoginTokens(at(60_000)), 1);
        assert.equal(await store.identities.getLoginToken(h3), undefined);
        assert.deepEqual(await store.identities.getLoginToken(h4), { userName: 'bob', expiresAt: at(twelveHours) });
        // Deleting tokens leaves their users.
        assert.deepEqual((await users()).map((u) => u.name), ['alice', 'bob']);
      });

      it("deleting a user deletes their access keys and login tokens, and only theirs", async () => {
        await store.identities.putUser({ name: 'alice', policy }, at(0));
        await store.identities.putUser({ name: 'alice2', policy }, at(0));
        const aliceKeys = ['CKIAALICE00000000001', 'CKIAALICE00000000002'];
        for (const [i, id] of aliceKeys.entries()) {
          await store.identities.putKey({ id, userName: 'alice', sealedSecret: sealed(i), active: i === 0 }, at(1000 + i));
        }
        await store.identities.putKey({ id: 'CKIAALICE20000000001', userName: 'alice2', sealedSecret: sealed(9), active: true }, at(2000));
        const [ta, tb, tc] = ['a', 'b', 'c'].map((s) => digestOf(Buffer.from(`token ${s}`)).slice('sha256:'.length)) as [string, string, string];
        await store.identities.putLoginToken(ta, 'alice', at(3_600_000));
        await store.identities.putLoginToken(tb, 'alice', at(7_200_000));
        await store.identities.putLoginToken(tc, 'alice2', at(3_600_000));

        assert.equal(await store.identities.deleteUser('alice'), true);
        assert.equal(await store.identities.getUser('alice'), undefined);
        assert.deepEqual(await keys('alice'), []);
        for (const id of aliceKeys) assert.equal(await store.identities.getKey(id), undefined, id);
        assert.equal(await store.identities.getLoginToken(ta), undefined);
        assert.equal(await store.identities.getLoginToken(tb), undefined);

        assert.ok(await store.identities.getUser('alice2'));
        assert.deepEqual((await keys('alice2')).map((k) => k.id), ['CKIAALICE20000000001']);
        assert.deepEqual(await store.identities.getLoginToken(tc), { userName: 'alice2', expiresAt: at(3_600_000) });

        // A user created again under the name starts without keys or tokens.
        await store.identities.putUser({ name: 'alice', policy: [] }, at(10_000));
        assert.deepEqual(await store.identities.getUser('alice'), { name: 'alice', policy: [], createdAt: at(10_000) });
        assert.deepEqual(await keys('alice'), []);
        assert.equal(await store.identities.getLoginToken(ta), undefined);
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
