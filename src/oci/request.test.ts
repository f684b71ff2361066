import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accepts, parseContentRange, parsePage, parseRange } from './request.ts';

test('Range: single ranges resolve against the size; anything else is RANGE_INVALID', () => {
  assert.equal(parseRange(undefined, 10), undefined);
  assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
  assert.deepEqual(parseRange('bytes=2-', 10), { start: 2, end: 9 });
  assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
  assert.deepEqual(parseRange('bytes=-30', 10), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=5-100', 10), { start: 5, end: 9 });
  for (const bad of ['bytes=10-', 'bytes=3-2', 'bytes=-0', 'bytes=-', 'bytes=0-1,3-4', 'bits=0-1', 'bytes= 1-2x']) {
    assert.throws(() => parseRange(bad, 10), { code: 'RANGE_INVALID' }, bad);
  }
  assert.throws(() => parseRange('bytes=0-', 0), { code: 'RANGE_INVALID' });
});

test('Content-Range of an upload chunk', () => {
  assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199 });
  for (const bad of ['99-0', 'a-b', '-1', '0-', '1-2-3']) assert.throws(() => parseContentRange(bad), { code: 'RANGE_INVALID' }, bad);
});

test('pagination parameters', () => {
  assert.deepEqual(parsePage(new URLSearchParams(''), 100, 1000), { limit: 100 });
  assert.deepEqual(parsePage(new URLSearchParams('n=5&last=b'), 100, 1000), { limit: 5, last: 'b' });
  assert.deepEqual(parsePage(new URLSearchParams('n=5000'), 100, 1000), { limit: 1000 });
  for (const n of ['-1', 'x', '1.5', '']) {
    assert.throws(() => parsePage(new URLSearchParams(`n=${n}`), 100, 1000), { code: 'PAGINATION_NUMBER_INVALID' }, n);
  }
});

test('Accept matching ignores parameters and honours wildcards', () => {
  const oci = 'application/vnd.oci.image.manifest.v1+json';
  assert.ok(accepts(undefined, oci));
  assert.ok(accepts(`application/json;q=0.5, ${oci};q=0.9`, oci));
  assert.ok(accepts('*/*', oci));
  assert.ok(!accepts('application/vnd.docker.distribution.manifest.v2+json', oci));
});
