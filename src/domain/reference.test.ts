import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDigest } from './digest.ts';
import { parseReference, parseRepositoryName, parseTag } from './reference.ts';
import { RegistryError } from './errors.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as RegistryError).code;
  }
  return 'accepted';
};

test('repository names follow the OCI grammar', () => {
  for (const ok of ['a', 'library/nginx', 'a.b/c_d/e__f/g-h', 'a--b', 'x'.repeat(255), '0/1']) {
    assert.equal(parseRepositoryName(ok), ok);
  }
  for (const bad of ['', 'A', 'a//b', '/a', 'a/', '../a', 'a/../b', 'a..b', 'a___b', '-a', 'a-', 'a b', 'a\0b', 'x'.repeat(256), 'a:b', 'ä']) {
    assert.equal(code(() => parseRepositoryName(bad)), 'NAME_INVALID', JSON.stringify(bad));
  }
});

test('tags follow the OCI grammar', () => {
  for (const ok of ['latest', 'v1.2.3', '_x', 'A-b_c.d', 't'.repeat(128)]) assert.equal(parseTag(ok), ok);
  for (const bad of ['', '.x', '-x', 'a/b', 'a:b', 't'.repeat(129), 'a\nb']) {
    assert.equal(code(() => parseTag(bad)), 'TAG_INVALID', JSON.stringify(bad));
  }
});

test('digests: sha256 and sha512 only, exact length, lower-case hex', () => {
  const hex = 'a'.repeat(64);
  assert.equal(parseDigest(`sha256:${hex}`), `sha256:${hex}`);
  assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`), `sha512:${'b'.repeat(128)}`);
  for (const bad of [`sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, `sha256:${hex}\n`, 'sha256:', ':abc', hex, `sha256:${'g'.repeat(64)}`]) {
    assert.equal(code(() => parseDigest(bad)), 'DIGEST_INVALID', JSON.stringify(bad));
  }
});

test('a reference is a digest when it has a colon, else a tag', () => {
  assert.deepEqual(parseReference('v1'), { kind: 'tag', tag: 'v1' });
  assert.equal(parseReference(`sha256:${'c'.repeat(64)}`).kind, 'digest');
  assert.equal(code(() => parseReference('sha256:zz')), 'DIGEST_INVALID');
});
