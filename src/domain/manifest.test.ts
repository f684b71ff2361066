import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from './digest.ts';
import { parseManifest } from './manifest.ts';
import { MediaType } from './media-types.ts';

const d = (s: string) => digestOf(Buffer.from(s));
const image = (extra: object = {}) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 1 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('l'), size: 2 },
        { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: d('foreign'), size: 3, urls: ['https://x'] },
      ],
      ...extra,
    }),
  );

test('an image manifest yields its blobs (without foreign layers), digest and size', () => {
  const body = image();
  const parsed = parseManifest(body, MediaType.OciManifest);
  assert.equal(parsed.digest, digestOf(body));
  assert.equal(parsed.size, body.length);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [d('c'), d('l')]);
  assert.equal(parsed.artifactType, 'application/vnd.oci.image.config.v1+json');
});

test('an artifact carries artifactType and subject', () => {
  const parsed = parseManifest(image({ artifactType: 'application/x-sig', subject: { mediaType: MediaType.OciManifest, digest: d('s'), size: 9 } }), undefined);
  assert.equal(parsed.artifactType, 'application/x-sig');
  assert.equal(parsed.subject?.digest, d('s'));
});

test('an index yields child manifests; the media type may come from the header alone', () => {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OciManifest, digest: d('m'), size: 5, platform: { os: 'linux', architecture: 'arm64' } }] }));
  const parsed = parseManifest(body, `${MediaType.OciIndex}; charset=utf-8`);
  assert.equal(parsed.mediaType, MediaType.OciIndex);
  assert.deepEqual(parsed.manifests.map((m) => m.digest), [d('m')]);
  assert.deepEqual(parsed.blobs, []);
});

test('contradictions and malformed content are MANIFEST_INVALID', () => {
  assert.throws(() => parseManifest(image(), MediaType.DockerManifest), { code: 'MANIFEST_INVALID' });
  assert.throws(() => parseManifest(Buffer.from('{'), undefined), { code: 'MANIFEST_INVALID' });
  assert.throws(() => parseManifest(image({ layers: [{ mediaType: 'x', digest: 'sha256:1', size: 1 }] }), undefined), { code: 'MANIFEST_INVALID' });
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] })), MediaType.DockerSchema1Signed), { code: 'MANIFEST_INVALID' });
});
