import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import {
  MediaType,
  blobsOf,
  buildImage,
  buildIndex,
  buildLayer,
  manifestsOf,
  parseTarHeader,
  pushImage,
  pushIndex,
  readOciLayout,
  seededBytes,
  seededChunks,
  sha256,
  sha256File,
  writeLayerFile,
  writeOciLayout,
  type BuiltImage,
} from '../fixtures/image-builder.ts';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cistern-image-builder-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Walks a tar archive: every header's checksum, data and padding, and the two zero blocks at the end. */
function parseTar(tar: Buffer): { path: string; size: number; type: string; mode: number; data: Buffer }[] {
  assert.equal(tar.length % 512, 0, 'tar length is a multiple of 512');
  const entries = [];
  let off = 0;
  for (;;) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const h = parseTarHeader(block); // throws on a bad checksum
    const data = tar.subarray(off + 512, off + 512 + h.size);
    entries.push({ ...h, data });
    off += 512 + Math.ceil(h.size / 512) * 512;
  }
  assert.ok(tar.subarray(off).equals(Buffer.alloc(1024)), 'ends with exactly two zero blocks');
  return entries;
}

describe('seeded content', () => {
  test('deterministic, seed-dependent, prefix-stable, chunked = whole', () => {
    assert.ok(seededBytes('s', 1000).equals(seededBytes('s', 1000)));
    assert.ok(!seededBytes('s', 1000).equals(seededBytes('t', 1000)));
    assert.ok(seededBytes('s', 3_000_000).subarray(0, 1000).equals(seededBytes('s', 1000)));
    const n = 2.5 * 1024 * 1024 + 7;
    const chunks = [...seededChunks('s', n)];
    assert.ok(chunks.length >= 3 && chunks.every((c) => c.length <= 1 << 20));
    assert.ok(Buffer.concat(chunks).equals(seededBytes('s', n)));
    assert.equal(seededBytes('s', 0).length, 0);
    // Pinned: the generator is part of the determinism contract (benchmarks may cache by digest).
    assert.equal(seededBytes('cistern', 8).toString('hex'), '2c30e196aa044daa');
  });
});

describe('layers', () => {
  test('a gzip layer is a valid ustar archive whose diffID is the sha256 of the tar', () => {
    const longDir = 'deep/' + 'x'.repeat(60) + '/' + 'y'.repeat(60);
    const layer = buildLayer({
      seed: 'L',
      files: [
        { path: 'etc/hello.txt', content: 'hello\n' },
        { path: 'bin/tool', size: 1500, mode: 0o755 },
        { path: `${longDir}/file.bin`, size: 512 },
        { path: 'empty', size: 0 },
      ],
    });
    assert.ok(layer.bytes);
    assert.equal(layer.compressed, true);
    assert.equal(layer.mediaType, MediaType.ociLayerGzip);
    assert.equal(layer.digest, sha256(layer.bytes));
    assert.equal(layer.size, layer.bytes.length);
    // gzip magic, deflate, mtime 0.
    assert.deepEqual([...layer.bytes.subarray(0, 3)], [0x1f, 0x8b, 8]);
    assert.equal(layer.bytes.readUInt32LE(4), 0);

    const tar = gunzipSync(layer.bytes);
    assert.equal(layer.diffId, sha256(tar));
    const entries = parseTar(tar);
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.size, e.mode]),
      [
        ['etc/', '5', 0, 0o755],
        ['etc/hello.txt', '0', 6, 0o644],
        ['bin/', '5', 0, 0o755],
        ['bin/tool', '0', 1500, 0o755],
        ['deep/', '5', 0, 0o755],
        [`deep/${'x'.repeat(60)}/`, '5', 0, 0o755],
        [`${longDir}/`, '5', 0, 0o755],
        [`${longDir}/file.bin`, '0', 512, 0o644],
        ['empty', '0', 0, 0o644],
      ],
    );
    assert.equal(entries[1]?.data.toString(), 'hello\n');
    assert.ok(entries[3]?.data.equals(seededBytes('L:bin/tool', 1500)));
  });

  test('system tar lists and extracts a written layer', () => {
    const layer = buildLayer({ seed: 'T', files: [{ path: 'a/b/c.txt', content: 'abc' }, { path: 'r.bin', size: 777 }] });
    const file = join(tmp, 'layer.tar.gz');
    writeFileSync(file, layer.bytes!);
    const listing = execFileSync('tar', ['-tvzf', file, '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(listing.length, 4);
    for (const line of listing) assert.match(line, /^[-d]rw[-x]r-[-x]r-[-x] 0\/0 +\d+ 1970-01-01 00:00 /);
    assert.deepEqual(
      listing.map((l) => l.split(' ').at(-1)),
      ['a/', 'a/b/', 'a/b/c.txt', 'r.bin'],
    );
    const out = join(tmp, 'extract');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', file, '-C', out]);
    assert.equal(readFileSync(join(out, 'a/b/c.txt'), 'utf8'), 'abc');
    assert.ok(readFileSync(join(out, 'r.bin')).equals(seededBytes('T:r.bin', 777)));
  });

  test('size-only, empty and uncompressed layers', () => {
    const sized = buildLayer({ seed: 'S', size: 10_000 });
    const entries = parseTar(gunzipSync(sized.bytes!));
    assert.equal(entries.filter((e) => e.type === '0').length, 1);
    assert.equal(entries.find((e) => e.type === '0')?.size, 10_000);

    const empty = buildLayer({ seed: 'E', files: [] });
    assert.deepEqual(gunzipSync(empty.bytes!), Buffer.alloc(1024));

    const plain = buildLayer({ seed: 'S', size: 10_000, compress: false });
    assert.equal(plain.mediaType, MediaType.ociLayerTar);
    assert.equal(plain.compressed, false);
    assert.equal(plain.digest, plain.diffId);
    assert.equal(plain.diffId, sized.diffId, 'same tar, compressed or not');

    assert.throws(() => buildLayer({ seed: 'x', size: 1, files: [] }));
    assert.throws(() => buildLayer({ seed: 'x', files: [{ path: 'a', content: 'abc', size: 2 }] }));
  });

  test('writeLayerFile streams the same bytes buildLayer makes', async () => {
    for (const compress of [true, false]) {
      const spec = { seed: 'W', files: [{ path: 'big.bin', size: 3 * 1024 * 1024 + 5 }, { path: 'x', content: 'y' }], compress };
      const mem = buildLayer(spec);
      const file = join(tmp, `w-${compress}.layer`);
      const disk = await writeLayerFile(file, spec);
      assert.equal(disk.path, file);
      assert.equal(disk.bytes, undefined);
      const pick = ({ digest, size, mediaType, diffId, compressed }: typeof mem) => ({ digest, size, mediaType, diffId, compressed });
      assert.deepEqual(pick(disk), pick(mem));
      assert.deepEqual(await sha256File(file), { digest: mem.digest, size: mem.size });
    }
  });
});

function checkImageShape(img: BuiltImage, family: 'oci' | 'docker'): void {
  const m = JSON.parse(img.manifest.toString());
  const mt = family === 'oci'
    ? { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip }
    : { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayerGzip };
  assert.equal(m.schemaVersion, 2);
  assert.equal(m.mediaType, mt.manifest);
  assert.equal(img.manifestMediaType, mt.manifest);
  assert.equal(img.manifestDigest, sha256(img.manifest));
  assert.deepEqual(m.config, { mediaType: mt.config, digest: sha256(img.config.bytes), size: img.config.bytes.length });
  assert.equal(m.layers.length, img.layers.length);
  img.layers.forEach((l, i) => {
    assert.deepEqual(m.layers[i], { mediaType: l.compressed ? mt.layer : l.mediaType, digest: l.digest, size: l.size });
    assert.equal(l.mediaType, m.layers[i].mediaType);
    if (l.bytes) {
      assert.equal(sha256(l.bytes), l.digest);
      assert.equal(l.bytes.length, l.size);
    }
  });
  const c = JSON.parse(img.config.bytes.toString());
  assert.equal(c.os, img.platform.os);
  assert.equal(c.architecture, img.platform.architecture);
  assert.equal(c.variant, img.platform.variant);
  assert.deepEqual(c.rootfs, { type: 'layers', diff_ids: img.layers.map((l) => l.diffId) });
  assert.equal(c.history.length, img.layers.length);
}

describe('images and indexes', () => {
  const spec = {
    seed: 'img',
    layers: [{ size: 2048 }, { files: [{ path: 'etc/os-release', content: 'ID=cistern\n' }] }, { size: 10, compress: false }],
  };

  test('determinism: same spec → byte-identical image; another seed → other digests', () => {
    const a = buildImage(spec);
    const b = buildImage(spec);
    assert.ok(a.manifest.equals(b.manifest));
    assert.ok(a.config.bytes.equals(b.config.bytes));
    a.layers.forEach((l, i) => assert.ok(l.bytes!.equals(b.layers[i]!.bytes!)));
    const c = buildImage({ ...spec, seed: 'img2' });
    assert.notEqual(c.manifestDigest, a.manifestDigest);
    assert.notEqual(c.layers[0]?.digest, a.layers[0]?.digest);
    // Layers with an explicit seed are shared between images.
    const s1 = buildImage({ seed: 'p', layers: [{ size: 100, seed: 'base' }] });
    const s2 = buildImage({ seed: 'q', layers: [{ size: 100, seed: 'base' }] });
    assert.equal(s1.layers[0]?.digest, s2.layers[0]?.digest);
    assert.notEqual(s1.manifestDigest, s2.manifestDigest);
  });

  test('pinned digests of uncompressed layers and image (catch accidental format changes)', () => {
    // These tars were checked byte for byte against Python's tarfile (USTAR_FORMAT, mtime 0, uid/gid 0,
    // uname/gname root, the same entries). Gzip'd digests are not pinned: they depend on Node's zlib.
    // If one changes on purpose, update it: every digest a test or benchmark cached changes too.
    const tiny = buildLayer({ seed: 'any', files: [{ path: 'a', content: 'b' }], compress: false });
    assert.equal(tiny.digest, 'sha256:1784f3d7433f95c177a65de736e25a6f7b49aec71f78f3675b024e10333c6552');
    const long = 'deep/' + 'x'.repeat(60) + '/' + 'y'.repeat(60);
    const dirs = buildLayer({
      seed: 'any',
      files: [{ path: 'etc/hello.txt', content: 'hello\n' }, { path: `${long}/f.txt`, content: 'z'.repeat(700), mode: 0o755 }],
      compress: false,
    });
    assert.equal(dirs.digest, 'sha256:c91af9f5722e2dbb86195f904de1b23054ef12f5794ef807d7e64c9cfad31c9c');
    const img = buildImage({ seed: 'pinned', layers: [{ size: 1000, compress: false }, { files: [{ path: 'a', content: 'b' }], compress: false }] });
    assert.equal(img.layers[1]?.digest, tiny.digest);
    assert.equal(img.layers[0]?.digest, 'sha256:8a3fd33263a1afc8a29e238a643828a6349a1e75210afd71c79ff9d37b6e61d3');
    assert.equal(img.manifestDigest, 'sha256:c6cea2e52923d6d11c1f9d0ca881829d20efd587242de11c0ffa84a97e2d3d77');
  });

  test('OCI image shape', () => {
    const img = buildImage({ ...spec, annotations: { 'org.example': 'yes' } });
    checkImageShape(img, 'oci');
    assert.deepEqual(JSON.parse(img.manifest.toString()).annotations, { 'org.example': 'yes' });
    assert.equal(img.layers[2]?.mediaType, MediaType.ociLayerTar);
    assert.deepEqual(img.platform, { os: 'linux', architecture: 'amd64' });
    const c = JSON.parse(img.config.bytes.toString());
    assert.equal(c.config.Labels['io.cistern.test.seed'], 'img');
  });

  test('Docker schema2 image shape', () => {
    const img = buildImage({ ...spec, mediaTypes: 'docker', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    checkImageShape(img, 'docker');
    assert.equal(img.layers[2]?.mediaType, MediaType.dockerLayerTar);
    assert.equal(JSON.parse(img.manifest.toString()).annotations, undefined);
    assert.throws(() => buildImage({ ...spec, mediaTypes: 'docker', annotations: { a: 'b' } }));
    // Same layer bytes as the OCI flavour: only the descriptors' media types differ.
    assert.deepEqual(img.layers.map((l) => l.digest), buildImage(spec).layers.map((l) => l.digest));
  });

  test('prebuilt (file-backed) layers can be mixed in', async () => {
    const big = await writeLayerFile(join(tmp, 'prebuilt.tar'), { seed: 'pre', size: 100_000, compress: false });
    const img = buildImage({ seed: 'mix', layers: [big, { size: 10 }] });
    checkImageShape(img, 'oci');
    assert.equal(img.layers[0]?.path, big.path);
    assert.equal(img.layers[0]?.mediaType, MediaType.ociLayerTar);
    const docker = buildImage({ seed: 'mix', mediaTypes: 'docker', layers: [big] });
    assert.equal(docker.layers[0]?.mediaType, MediaType.dockerLayerTar);
  });

  test('OCI index and Docker manifest list carry platforms', () => {
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'windows', architecture: 'amd64' },
    ];
    for (const family of ['oci', 'docker'] as const) {
      const images = platforms.map((platform) => buildImage({ seed: 'multi', platform, mediaTypes: family }));
      assert.equal(new Set(images.map((i) => i.manifestDigest)).size, 3, 'one manifest per platform');
      const idx = buildIndex(images);
      const m = JSON.parse(idx.manifest.toString());
      assert.equal(m.schemaVersion, 2);
      assert.equal(m.mediaType, family === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList);
      assert.equal(idx.manifestMediaType, m.mediaType);
      assert.equal(idx.manifestDigest, sha256(idx.manifest));
      assert.deepEqual(
        m.manifests,
        images.map((i) => ({ mediaType: i.manifestMediaType, digest: i.manifestDigest, size: i.manifest.length, platform: i.platform })),
      );
      assert.ok(buildIndex(images).manifest.equals(idx.manifest));
      assert.equal(manifestsOf(idx).length, 4);
      assert.equal(manifestsOf(idx).at(-1)?.digest, idx.manifestDigest, 'index last (push order)');
      // Per-layer seeds derive from the image seed and layer index, so same-seed images share layers.
      assert.equal(blobsOf(idx).length, new Set(images.flatMap((i) => [i.config.digest, ...i.layers.map((l) => l.digest)])).size);
    }
    const oci = buildImage({ seed: 'a' });
    const docker = buildImage({ seed: 'a', mediaTypes: 'docker' });
    assert.throws(() => buildIndex([oci, docker]));
  });
});

describe('OCI image layout', () => {
  test('write → read round trip, ref names, reachability, verification', async () => {
    const dir = join(tmp, 'layout');
    const img = buildImage({ seed: 'lay', layers: [{ size: 1000 }, { size: 2000 }] });
    const idx = buildIndex([
      buildImage({ seed: 'lay-m', platform: { os: 'linux', architecture: 'amd64' } }),
      buildImage({ seed: 'lay-m', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
    ]);
    writeOciLayout(dir, [
      { refName: 'one', target: img },
      { refName: 'many', target: idx },
    ]);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });

    const layout = readOciLayout(dir);
    assert.equal(layout.index.schemaVersion, 2);
    assert.deepEqual([...layout.refs.keys()], ['one', 'many']);
    assert.deepEqual(layout.resolve('one'), {
      mediaType: MediaType.ociManifest,
      digest: img.manifestDigest,
      size: img.manifest.length,
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: { 'org.opencontainers.image.ref.name': 'one' },
    });
    assert.equal(layout.resolve('many').mediaType, MediaType.ociIndex);
    assert.throws(() => layout.resolve('nope'));
    assert.deepEqual(layout.reachable(idx.manifestDigest), {
      manifests: manifestsOf(idx).map((m) => m.digest).sort(),
      blobs: blobsOf(idx).map((b) => b.digest).sort(),
    });
    assert.ok(layout.readBlob(img.manifestDigest).equals(img.manifest));
    assert.deepEqual(
      layout.blobDigests(),
      [...new Set([...blobsOf(img), ...manifestsOf(img), ...blobsOf(idx), ...manifestsOf(idx)].map((b) => b.digest))].sort(),
    );
    await layout.verify();

    // Rewriting a ref replaces its entry; others stay.
    const img2 = buildImage({ seed: 'lay2' });
    writeOciLayout(dir, [{ refName: 'one', target: img2 }]);
    const again = readOciLayout(dir);
    assert.equal(again.resolve('one').digest, img2.manifestDigest);
    assert.equal(again.resolve('many').digest, idx.manifestDigest);
    assert.equal(again.index.manifests.length, 2);

    // A corrupted blob is caught.
    writeFileSync(again.blobPath(img.layers[0]!.digest), 'garbage');
    await assert.rejects(again.verify(), /hashes to/);
  });

  test('file-backed layers are linked or copied into the layout', async () => {
    const dir = join(tmp, 'layout-files');
    const big = await writeLayerFile(join(tmp, 'fb.tar.gz'), { seed: 'fb', size: 50_000 });
    const img = buildImage({ seed: 'fb', layers: [big] });
    writeOciLayout(dir, [{ refName: 'x', target: img }]);
    const layout = readOciLayout(dir);
    assert.deepEqual(layout.reachable(layout.resolve('x').digest).blobs, [img.config.digest, big.digest].sort());
    await layout.verify();
  });
});

describe('push helpers speak the OCI distribution protocol', () => {
  let server: Server;
  let url: string;
  const log: string[] = [];
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { type: string; body: Buffer }>();
  let uploads = 0;

  const body = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  before(async () => {
    // A tiny in-memory registry: just enough of the spec to see what the helpers send.
    server = createServer(async (req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const data = await body(req);
      log.push(`${req.method} ${u.pathname}${u.search}`);
      let m: RegExpExecArray | null;
      if ((m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(u.pathname)) && req.method === 'HEAD') {
        res.writeHead(blobs.has(m[2]!) ? 200 : 404).end();
      } else if ((m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(u.pathname)) && req.method === 'POST') {
        res.writeHead(202, { location: `/v2/${m[1]}/blobs/uploads/u${++uploads}?state=abc` }).end();
      } else if ((m = /^\/v2\/(.+)\/blobs\/uploads\/(u\d+)$/.exec(u.pathname)) && req.method === 'PUT') {
        const digest = u.searchParams.get('digest') ?? '';
        if (u.searchParams.get('state') !== 'abc' || sha256(data) !== digest) return void res.writeHead(400).end();
        if (req.headers['content-length'] !== String(data.length)) return void res.writeHead(411).end();
        blobs.set(digest, data);
        res.writeHead(201, { location: `/v2/${m[1]}/blobs/${digest}` }).end();
      } else if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(u.pathname)) && req.method === 'PUT') {
        const doc = JSON.parse(data.toString()) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
        const missing = [doc.config?.digest, ...(doc.layers ?? []).map((l) => l.digest)].filter((d) => d && !blobs.has(d));
        const missingChildren = (doc.manifests ?? []).filter((c) => !manifests.has(c.digest));
        if (missing.length || missingChildren.length) return void res.writeHead(400).end('missing');
        const entry = { type: String(req.headers['content-type']), body: data };
        manifests.set(m[2]!, entry);
        manifests.set(sha256(data), entry);
        res.writeHead(201, { 'docker-content-digest': sha256(data), location: `/v2/${m[1]}/manifests/${sha256(data)}` }).end();
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('pushImage: HEAD, POST, PUT ?digest per blob, then PUT manifest with its media type; existing blobs skipped', async () => {
    const big = await writeLayerFile(join(tmp, 'push.tar'), { seed: 'push', size: 300_000, compress: false });
    const img = buildImage({ seed: 'push', layers: [{ size: 100 }, big] });
    log.length = 0;
    const r = await pushImage(url, 'team/app', 'v1', img);
    assert.equal(r.digest, img.manifestDigest);
    assert.equal(log.length, 3 * 3 + 1);
    assert.deepEqual(log.slice(0, 3).map((l) => l.split(' ')[0]), ['HEAD', 'POST', 'PUT']);
    assert.match(log[2]!, /^PUT \/v2\/team\/app\/blobs\/uploads\/u\d+\?state=abc&digest=sha256%3A[a-f0-9]{64}$/);
    assert.equal(log.at(-1), 'PUT /v2/team/app/manifests/v1');
    assert.equal(manifests.get('v1')?.type, MediaType.ociManifest);
    assert.ok(manifests.get('v1')?.body.equals(img.manifest));
    assert.ok(blobs.get(big.digest)?.equals(readFileSync(big.path!)), 'file-backed blob streamed intact');

    log.length = 0;
    await pushImage(url, 'team/app', 'v2', img);
    assert.deepEqual(log.map((l) => l.split(' ')[0]), ['HEAD', 'HEAD', 'HEAD', 'PUT']);
  });

  test('pushIndex pushes children by digest before the index', async () => {
    const idx = buildIndex(
      ['amd64', 'arm64'].map((architecture) => buildImage({ seed: 'pi', platform: { os: 'linux', architecture }, mediaTypes: 'docker' })),
    );
    log.length = 0;
    await pushIndex(url, 'team/multi', 'latest', idx);
    const manifestPuts = log.filter((l) => l.includes('/manifests/'));
    assert.deepEqual(manifestPuts, [
      ...idx.images.map((i) => `PUT /v2/team/multi/manifests/${i.manifestDigest}`),
      'PUT /v2/team/multi/manifests/latest',
    ]);
    assert.equal(manifests.get('latest')?.type, MediaType.dockerManifestList);
  });

  test('errors carry the HTTP status', async () => {
    const img = buildImage({ seed: 'err' });
    await assert.rejects(pushImage(url.replace(/\/$/, '') + '/nope', 'x', 'y', img), /HTTP 404/);
  });
});
