/**
 * End-to-end: the real `skopeo` (1.9) binary pushes and pulls images to/from the registry under test.
 *
 * The registry under test comes from `startRegistryUnderTest()` alone: Cistern. The assertions were first
 * written and proven against CNCF Distribution, so pointing that function at `startDistribution()` runs
 * the same suite against the reference. All traffic is plain HTTP on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blobsOf,
  buildImage,
  buildIndex,
  manifestsOf,
  pushImage,
  pushIndex,
  readOciLayout,
  sha256,
  writeOciLayout,
  type BuiltArtifact,
  type BuiltImage,
  type BuiltIndex,
} from '../fixtures/image-builder.ts';
import { startCistern } from '../helpers/cistern.ts';
import { skopeo } from '../helpers/skopeo.ts';

interface RegistryUnderTest {
  /** '127.0.0.1:PORT' */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  stop(): Promise<void>;
}

/** The one place that decides which registry is tested. */
async function startRegistryUnderTest(): Promise<RegistryUnderTest> {
  return startCistern();
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

/** The manifest and blob digests an artifact consists of. */
function expected(a: BuiltArtifact): { manifests: string[]; blobs: string[] } {
  return { manifests: sorted(manifestsOf(a).map((m) => m.digest)), blobs: sorted(blobsOf(a).map((b) => b.digest)) };
}

const platform = (architecture: string, variant?: string) => ({ os: 'linux', architecture, ...(variant ? { variant } : {}) });

describe('skopeo 1.9 against the registry under test', { timeout: 300_000 }, () => {
  let reg: RegistryUnderTest;
  let work: string;
  let srcLayout: string;
  let single: BuiltImage;
  let multi: BuiltIndex;
  let n = 0;
  const freshDir = (label: string) => join(work, `${label}-${++n}`);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'cistern-e2e-skopeo-'));
    reg = await startRegistryUnderTest();

    single = buildImage({
      seed: 'e2e-single',
      layers: [
        { size: 5 * 1024 * 1024 + 123 }, // big enough that skopeo streams it in several writes
        { files: [{ path: 'etc/motd', content: 'hello from cistern\n' }, { path: 'usr/share/doc/a.bin', size: 70_000 }] },
        { size: 1 },
        { files: [] }, // an empty tar (just the end-of-archive blocks)
      ],
      annotations: { 'org.opencontainers.image.title': 'e2e-single' },
    });
    multi = buildIndex(
      [
        buildImage({ seed: 'e2e-multi', platform: platform('amd64'), layers: [{ size: 40_000, seed: 'shared-base' }, { size: 3000 }] }),
        buildImage({ seed: 'e2e-multi', platform: platform('arm64', 'v8'), layers: [{ size: 40_000, seed: 'shared-base' }, { size: 3001 }] }),
        buildImage({ seed: 'e2e-multi', platform: platform('arm', 'v7'), layers: [{ size: 40_000, seed: 'shared-base' }, { size: 3002 }] }),
      ],
      { annotations: { 'org.opencontainers.image.title': 'e2e-multi' } },
    );
    // The shared base layer really is one blob across the three images.
    assert.equal(new Set(multi.images.map((i) => i.layers[0]?.digest)).size, 1);

    srcLayout = join(work, 'src-layout');
    writeOciLayout(srcLayout, [
      { refName: 'single', target: single },
      { refName: 'multi', target: multi },
    ]);
  });

  after(async () => {
    await reg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Pulls `ref` into a new OCI layout and checks it holds exactly `a`, byte for byte. */
  async function pullAndCompare(ref: string, a: BuiltArtifact, extraArgs: string[] = []): Promise<void> {
    const dir = freshDir('pull');
    await skopeo('copy', '--src-tls-verify=false', ...extraArgs, `docker://${ref}`, `oci:${dir}:x`);
    const layout = readOciLayout(dir);
    const desc = layout.resolve('x');
    assert.equal(desc.digest, a.manifestDigest, `manifest digest of ${ref}`);
    assert.equal(desc.mediaType, a.manifestMediaType);
    assert.equal(desc.size, a.manifest.length);
    assert.ok(layout.readBlob(desc.digest).equals(a.manifest), 'manifest bytes identical');
    assert.deepEqual(layout.reachable(desc.digest), expected(a));
    for (const b of blobsOf(a)) assert.equal(sha256(layout.readBlob(b.digest)), b.digest);
    await layout.verify();
  }

  test('copy a several-layer image from an OCI layout to the registry', async () => {
    const digestFile = join(work, 'single.digest');
    await skopeo('copy', '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${srcLayout}:single`, `docker://${reg.host}/e2e/single:v1`);
    assert.equal(readFileSync(digestFile, 'utf8').trim(), single.manifestDigest);

    // The registry serves exactly the pushed manifest, with its media type and digest.
    const res = await fetch(`${reg.url}/v2/e2e/single/manifests/v1`, { headers: { accept: single.manifestMediaType } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), single.manifestMediaType);
    assert.equal(res.headers.get('docker-content-digest'), single.manifestDigest);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(single.manifest));
    for (const b of blobsOf(single)) {
      const head = await fetch(`${reg.url}/v2/e2e/single/blobs/${b.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `blob ${b.digest}`);
      assert.equal(head.headers.get('content-length'), String(b.size));
    }
  });

  test('copy a multi-arch index with --all, and again with --multi-arch all', async () => {
    const digestFile = join(work, 'multi.digest');
    await skopeo('copy', '--dest-tls-verify=false', '--all', '--digestfile', digestFile, `oci:${srcLayout}:multi`, `docker://${reg.host}/e2e/multi:v1`);
    assert.equal(readFileSync(digestFile, 'utf8').trim(), multi.manifestDigest);
    await skopeo('copy', '--dest-tls-verify=false', '--multi-arch', 'all', `oci:${srcLayout}:multi`, `docker://${reg.host}/e2e/multi:v2`);

    for (const tag of ['v1', 'v2']) {
      const res = await fetch(`${reg.url}/v2/e2e/multi/manifests/${tag}`, { headers: { accept: multi.manifestMediaType } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), multi.manifestDigest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(multi.manifest));
    }
    for (const img of multi.images) {
      const res = await fetch(`${reg.url}/v2/e2e/multi/manifests/${img.manifestDigest}`, { headers: { accept: img.manifestMediaType } });
      assert.equal(res.status, 200, `child ${img.platform.architecture}`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(img.manifest));
    }
  });

  test('pull the image back by tag and by digest: identical manifest and blobs', async () => {
    await pullAndCompare(`${reg.host}/e2e/single:v1`, single);
    await pullAndCompare(`${reg.host}/e2e/single@${single.manifestDigest}`, single);
  });

  test('pull the index back (--all) by tag and by digest: identical index, manifests and blobs', async () => {
    await pullAndCompare(`${reg.host}/e2e/multi:v1`, multi, ['--all']);
    await pullAndCompare(`${reg.host}/e2e/multi@${multi.manifestDigest}`, multi, ['--multi-arch', 'all']);
  });

  test('pull one platform of the index by child digest', async () => {
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64');
    assert.ok(arm);
    await pullAndCompare(`${reg.host}/e2e/multi@${arm.manifestDigest}`, arm);
  });

  test('skopeo inspect: digest, layers, platform, labels', async () => {
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg.host}/e2e/single:v1`));
    assert.equal(info.Name, `${reg.host}/e2e/single`);
    assert.equal(info.Digest, single.manifestDigest);
    assert.deepEqual(info.Layers, single.layers.map((l) => l.digest));
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Os, 'linux');
    assert.equal(info.Created, '1970-01-01T00:00:00Z');
    assert.equal(info.Labels['io.cistern.test.seed'], 'e2e-single');
    assert.deepEqual(info.RepoTags, ['v1']);

    // On an index, Digest is the index's; the rest describes the instance for the chosen platform.
    for (const img of multi.images) {
      const p = img.platform;
      const args = ['--override-os', p.os, '--override-arch', p.architecture, ...(p.variant ? ['--override-variant', p.variant] : [])];
      const m = JSON.parse(await skopeo('inspect', '--tls-verify=false', ...args, `docker://${reg.host}/e2e/multi:v1`));
      assert.equal(m.Digest, multi.manifestDigest);
      assert.equal(m.Architecture, p.architecture);
      assert.deepEqual(m.Layers, img.layers.map((l) => l.digest));
      assert.deepEqual(m.RepoTags, ['v1', 'v2']);
    }
  });

  test('skopeo inspect --raw / --config --raw return the exact bytes', async () => {
    const raw = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/e2e/single:v1`);
    assert.equal(raw, single.manifest.toString('utf8'));
    const rawIndex = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/e2e/multi@${multi.manifestDigest}`);
    assert.equal(rawIndex, multi.manifest.toString('utf8'));
    const parsed = JSON.parse(rawIndex);
    assert.deepEqual(
      parsed.manifests.map((d: { platform: unknown }) => d.platform),
      multi.images.map((i) => i.platform),
    );
    const config = await skopeo('inspect', '--tls-verify=false', '--config', '--raw', `docker://${reg.host}/e2e/single:v1`);
    assert.equal(config, single.config.bytes.toString('utf8'));
  });

  test('skopeo list-tags', async () => {
    await skopeo('copy', '--dest-tls-verify=false', `oci:${srcLayout}:single`, `docker://${reg.host}/e2e/single:latest`);
    await skopeo('copy', '--dest-tls-verify=false', `oci:${srcLayout}:single`, `docker://${reg.host}/e2e/single:1.0.0`);
    const single_ = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${reg.host}/e2e/single`));
    assert.equal(single_.Repository, `${reg.host}/e2e/single`);
    assert.deepEqual([...single_.Tags].sort(), ['1.0.0', 'latest', 'v1']);
    const multi_ = JSON.parse(await skopeo('list-tags', '--tls-verify=false', `docker://${reg.host}/e2e/multi`));
    assert.deepEqual([...multi_.Tags].sort(), ['v1', 'v2']);
    await assert.rejects(skopeo('list-tags', '--tls-verify=false', `docker://${reg.host}/e2e/nonexistent`));
  });

  test('uncompressed layers: skopeo gzips them unless --preserve-digests', async () => {
    const img = buildImage({ seed: 'e2e-tar', layers: [{ size: 20_000, compress: false }, { size: 100 }] });
    const layout = freshDir('tar-layout');
    writeOciLayout(layout, [{ refName: 't', target: img }]);

    // By default skopeo compresses the tar layer on the way to a registry: a different image. (Done
    // first and into its own repo: once the registry has the uncompressed blob, skopeo reuses it as is.)
    const digestFile = join(work, 'tar.digest');
    await skopeo('copy', '--dest-tls-verify=false', '--digestfile', digestFile, `oci:${layout}:t`, `docker://${reg.host}/e2e/tar-converted:t`);
    const converted = readFileSync(digestFile, 'utf8').trim();
    assert.notEqual(converted, img.manifestDigest);
    const m = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/e2e/tar-converted@${converted}`));
    assert.equal(m.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.notEqual(m.layers[0].digest, img.layers[0]?.digest);
    assert.equal(m.layers[1].digest, img.layers[1]?.digest);

    // --preserve-digests keeps it; pulling into oci: needs --dest-oci-accept-uncompressed-layers likewise.
    await skopeo('copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:t`, `docker://${reg.host}/e2e/tar:preserved`);
    await pullAndCompare(`${reg.host}/e2e/tar:preserved`, img, ['--dest-oci-accept-uncompressed-layers']);
  });

  test('Docker schema2 image and manifest list pushed with fetch helpers, read back by skopeo', async () => {
    const dImg = buildImage({ seed: 'e2e-docker', mediaTypes: 'docker', layers: [{ size: 12_345 }, { size: 10 }] });
    const dList = buildIndex([
      buildImage({ seed: 'e2e-dlist', mediaTypes: 'docker', platform: platform('amd64') }),
      buildImage({ seed: 'e2e-dlist', mediaTypes: 'docker', platform: platform('s390x') }),
    ]);
    const pushed = await pushImage(reg.url, 'e2e/docker', 'v1', dImg);
    assert.equal(pushed.digest, dImg.manifestDigest);
    await pushIndex(reg.url, 'e2e/docker', 'list', dList);

    const raw = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/e2e/docker:v1`);
    assert.equal(raw, dImg.manifest.toString('utf8'));
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg.host}/e2e/docker:list`));
    assert.equal(info.Digest, dList.manifestDigest);
    assert.deepEqual(info.Layers, dList.images[0]?.layers.map((l) => l.digest));

    // An oci: destination would convert Docker manifests to OCI; dir: keeps them as they are.
    const dir = freshDir('dir');
    await skopeo('copy', '--src-tls-verify=false', '--all', `docker://${reg.host}/e2e/docker:list`, `dir:${dir}`);
    assert.ok(readFileSync(join(dir, 'manifest.json')).equals(dList.manifest));
    for (const img of dList.images) {
      assert.ok(readFileSync(join(dir, `${img.manifestDigest.slice(7)}.manifest.json`)).equals(img.manifest));
    }
    const files = readdirSync(dir);
    for (const b of blobsOf(dList)) {
      assert.ok(files.includes(b.digest.slice(7)), `blob ${b.digest} in dir:`);
      assert.equal(sha256(readFileSync(join(dir, b.digest.slice(7)))), b.digest);
    }

    // Registry-to-registry copy into another repository keeps every digest.
    await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--all', '--preserve-digests',
      `docker://${reg.host}/e2e/docker:list`, `docker://${reg.host}/e2e/docker-copy:list`);
    const copied = await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/e2e/docker-copy:list`);
    assert.equal(sha256(copied), dList.manifestDigest);
  });

  test('the tags skopeo pushed are listed by GET /v2/<name>/tags/list', async () => {
    const res = await fetch(`${reg.url}/v2/e2e/single/tags/list`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { name: string; tags: string[] };
    assert.equal(body.name, 'e2e/single');
    assert.deepEqual([...body.tags].sort(), ['1.0.0', 'latest', 'v1']);
  });
});
