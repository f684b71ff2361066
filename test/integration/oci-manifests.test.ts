import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MediaType } from '../../src/domain/media-types.ts';
import { openMetadata, startCistern, type TestCistern } from '../helpers/cistern.ts';
import { blob, body, errorCode, imageManifest, indexManifest, pushBlob, pushImage, putManifest, sha256 } from '../helpers/oci.ts';

describe('OCI manifests', () => {
  let cistern: TestCistern;
  let base: string;
  before(async () => {
    cistern = await startCistern();
    base = cistern.url;
  });
  after(() => cistern.stop());

  it('answers GET /v2/ with the API version header', async () => {
    const res = await fetch(`${base}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('stores a manifest byte for byte and serves it by tag and by digest with the right headers', async () => {
    const image = await pushImage(base, 'app/web', 'v1', 'web');
    for (const reference of ['v1', image.digest]) {
      const res = await fetch(`${base}/v2/app/web/manifests/${reference}`, { headers: { Accept: MediaType.OciManifest } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), MediaType.OciManifest);
      assert.equal(res.headers.get('docker-content-digest'), image.digest);
      assert.equal(Number(res.headers.get('content-length')), image.bytes.length);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.bytes);
      const head = await fetch(`${base}/v2/app/web/manifests/${reference}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('docker-content-digest'), image.digest);
      assert.equal(Number(head.headers.get('content-length')), image.bytes.length);
      assert.equal(head.headers.get('content-type'), MediaType.OciManifest);
    }
  });

  it('returns Location and Docker-Content-Digest on PUT', async () => {
    const config = blob('put/config');
    await pushBlob(base, 'put/headers', config);
    const manifest = imageManifest(config, []);
    const res = await putManifest(base, 'put/headers', 'latest', manifest);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), manifest.digest);
    assert.equal(res.headers.get('location'), `/v2/put/headers/manifests/${manifest.digest}`);
  });

  it('accepts a push by digest, refusing a body whose digest differs', async () => {
    const config = blob('bydigest/config');
    await pushBlob(base, 'bydigest', config);
    const manifest = imageManifest(config, []);
    assert.equal((await putManifest(base, 'bydigest', manifest.digest, manifest)).status, 201);
    const other = imageManifest(config, [], { annotations: { a: 'b' } });
    const res = await putManifest(base, 'bydigest', manifest.digest, other);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'DIGEST_INVALID');
    const stored = await fetch(`${base}/v2/bydigest/manifests/${manifest.digest}`);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), manifest.bytes);
  });

  it('refuses a manifest whose blobs the repository does not have, and stores nothing', async () => {
    const config = blob('missing/config');
    const layer = blob('missing/layer');
    await pushBlob(base, 'missing', config);
    const manifest = imageManifest(config, [layer]);
    const res = await putManifest(base, 'missing', 'v1', manifest);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await fetch(`${base}/v2/missing/manifests/v1`)).status, 404);
    assert.equal((await fetch(`${base}/v2/missing/manifests/${manifest.digest}`)).status, 404);
  });

  it('refuses a blob held only by another repository', async () => {
    const config = blob('isolated/config');
    await pushBlob(base, 'owner', config);
    const res = await putManifest(base, 'thief', 'v1', imageManifest(config, []));
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('refuses a descriptor whose size is wrong', async () => {
    const config = blob('size/config');
    await pushBlob(base, 'sizes', config);
    const res = await putManifest(base, 'sizes', 'v1', imageManifest({ ...config, size: config.size + 1 }, []));
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_INVALID');
  });

  it('stores an index only when every child manifest is present', async () => {
    const amd = await pushImage(base, 'multi', 'amd64', 'multi-amd');
    const arm = await pushImage(base, 'multi', 'arm64', 'multi-arm');
    const missingChild = imageManifest(blob('nowhere'), []);
    const broken = indexManifest([
      { manifest: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { manifest: missingChild, platform: { os: 'linux', architecture: 'riscv64' } },
    ]);
    const refused = await putManifest(base, 'multi', 'broken', broken);
    assert.equal(await errorCode(refused), 'MANIFEST_BLOB_UNKNOWN');

    const index = indexManifest([
      { manifest: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { manifest: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    assert.equal((await putManifest(base, 'multi', 'latest', index)).status, 201);
    const res = await fetch(`${base}/v2/multi/manifests/latest`, { headers: { Accept: `${MediaType.OciIndex}, ${MediaType.OciManifest}` } });
    assert.equal(res.headers.get('content-type'), MediaType.OciIndex);
    assert.equal(res.headers.get('docker-content-digest'), index.digest);
  });

  it('negotiates Accept: a client that cannot read an index gets its linux/amd64 image by tag; an unreadable type is refused', async () => {
    const amd = await pushImage(base, 'negotiate', 'amd64', 'neg-amd');
    const index = indexManifest([{ manifest: amd, platform: { os: 'linux', architecture: 'amd64' } }]);
    await putManifest(base, 'negotiate', 'multi', index);
    const res = await fetch(`${base}/v2/negotiate/manifests/multi`, { headers: { Accept: MediaType.OciManifest } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), amd.digest);

    const docker = await fetch(`${base}/v2/negotiate/manifests/amd64`, { headers: { Accept: MediaType.DockerManifest } });
    assert.equal(docker.status, 404);
    assert.equal(await errorCode(docker), 'MANIFEST_UNKNOWN');

    const wildcard = await fetch(`${base}/v2/negotiate/manifests/multi`, { headers: { Accept: '*/*' } });
    assert.equal(wildcard.headers.get('docker-content-digest'), index.digest);
  });

  it('serves Docker schema 2 manifests and manifest lists with their own media types', async () => {
    const config = blob('docker/config');
    const layer = blob('docker/layer');
    await pushBlob(base, 'docker', config);
    await pushBlob(base, 'docker', layer);
    const manifest = imageManifest(config, [layer], {}, MediaType.DockerManifest);
    assert.equal((await putManifest(base, 'docker', 'v2', manifest)).status, 201);
    const list = indexManifest([{ manifest, platform: { os: 'linux', architecture: 'amd64' } }], MediaType.DockerManifestList);
    assert.equal((await putManifest(base, 'docker', 'list', list)).status, 201);
    const res = await fetch(`${base}/v2/docker/manifests/list`, { headers: { Accept: MediaType.DockerManifestList } });
    assert.equal(res.headers.get('content-type'), MediaType.DockerManifestList);
    const single = await fetch(`${base}/v2/docker/manifests/v2`, { headers: { Accept: MediaType.DockerManifest } });
    assert.equal(single.headers.get('content-type'), MediaType.DockerManifest);
  });

  it('refuses a Content-Type that contradicts the body, and schema 1', async () => {
    const config = blob('ct/config');
    await pushBlob(base, 'ct', config);
    const manifest = imageManifest(config, []);
    const res = await fetch(`${base}/v2/ct/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaType.DockerManifest },
      body: body(manifest.bytes),
    });
    assert.equal(await errorCode(res), 'MANIFEST_INVALID');
    const schema1 = await fetch(`${base}/v2/ct/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaType.DockerSchema1Signed },
      body: JSON.stringify({ schemaVersion: 1, name: 'ct', tag: 'v1', fsLayers: [] }),
    });
    assert.equal(await errorCode(schema1), 'MANIFEST_INVALID');
  });

  it('moves a tag to a new manifest', async () => {
    const first = await pushImage(base, 'moving', 'stable', 'moving-1');
    const second = await pushImage(base, 'moving', 'stable', 'moving-2');
    assert.notEqual(first.digest, second.digest);
    const res = await fetch(`${base}/v2/moving/manifests/stable`, { method: 'HEAD' });
    assert.equal(res.headers.get('docker-content-digest'), second.digest);
    // The old manifest is still there by digest.
    assert.equal((await fetch(`${base}/v2/moving/manifests/${first.digest}`, { method: 'HEAD' })).status, 200);
  });

  it('deletes a tag without the manifest, and a manifest with its tags', async () => {
    const image = await pushImage(base, 'deleting', 'a', 'deleting');
    await putManifest(base, 'deleting', 'b', image);
    assert.equal((await fetch(`${base}/v2/deleting/manifests/a`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${base}/v2/deleting/manifests/a`)).status, 404);
    assert.equal((await fetch(`${base}/v2/deleting/manifests/b`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${base}/v2/deleting/manifests/${image.digest}`, { method: 'DELETE' })).status, 202);
    const gone = await fetch(`${base}/v2/deleting/manifests/b`);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'MANIFEST_UNKNOWN');
    const again = await fetch(`${base}/v2/deleting/manifests/${image.digest}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), 'MANIFEST_UNKNOWN');
  });

  it('answers the OCI-Subject header for a manifest with a subject, and lists it as a referrer', async () => {
    const subject = await pushImage(base, 'signed', 'v1', 'signed');
    const empty = blob('empty', 2);
    await pushBlob(base, 'signed', empty);
    const signature = imageManifest(empty, [], {
      artifactType: 'application/vnd.example.signature',
      subject: { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.bytes.length },
      annotations: { 'org.example.signer': 'ci' },
    });
    const sbom = imageManifest(empty, [], {
      artifactType: 'application/spdx+json',
      subject: { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.bytes.length },
    });
    const res = await putManifest(base, 'signed', signature.digest, signature);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('oci-subject'), subject.digest);
    await putManifest(base, 'signed', sbom.digest, sbom);

    const all = await fetch(`${base}/v2/signed/referrers/${subject.digest}`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), MediaType.OciIndex);
    assert.equal(all.headers.get('oci-filters-applied'), null);
    const index = (await all.json()) as { manifests: { digest: string; artifactType: string; annotations?: object; size: number }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [signature.digest, sbom.digest].sort());
    const sig = index.manifests.find((m) => m.digest === signature.digest)!;
    assert.equal(sig.artifactType, 'application/vnd.example.signature');
    assert.equal(sig.size, signature.bytes.length);
    assert.deepEqual(sig.annotations, { 'org.example.signer': 'ci' });

    const filtered = await fetch(`${base}/v2/signed/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`);
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    const only = (await filtered.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(only.manifests.map((m) => m.digest), [sbom.digest]);

    const none = await fetch(`${base}/v2/signed/referrers/${sha256('nothing refers to this')}`);
    assert.equal(none.status, 200);
    assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);
  });

  it('refuses a manifest over the size limit with 413 SIZE_INVALID', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const res = await fetch(`${base}/v2/big/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaType.OciManifest },
      body: body(big),
    });
    assert.equal(res.status, 413);
    assert.equal(await errorCode(res), 'SIZE_INVALID');
    assert.equal((await fetch(`${base}/v2/big/tags/list`)).status, 404);
  });

  it('records the last pull of a manifest in batches, not for HEAD', async () => {
    const image = await pushImage(base, 'pulled', 'v1', 'pulled');
    const store = cistern.app.local;
    await fetch(`${base}/v2/pulled/manifests/v1`, { method: 'HEAD' });
    await store.flushPulls();
    // HEAD alone records nothing: read through the metadata store directly.
    const db = await openMetadata(cistern);
    try {
      const before = await db.manifests.get('pulled', image.digest as never);
      assert.equal(before?.lastPulledAt, undefined);
      await (await fetch(`${base}/v2/pulled/manifests/v1`)).arrayBuffer();
      await store.flushPulls();
      const afterPull = await db.manifests.get('pulled', image.digest as never);
      assert.ok(afterPull?.lastPulledAt instanceof Date);
      assert.ok(afterPull.lastPulledAt.getTime() >= afterPull.pushedAt.getTime());
    } finally {
      await db.close();
    }
  });
});
