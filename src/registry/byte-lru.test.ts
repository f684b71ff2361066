import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteLru } from './byte-lru.ts';

test('evicts the least recently used entries beyond the byte budget', () => {
  const lru = new ByteLru<string>(10);
  lru.set('a', 'A', 4);
  lru.set('b', 'B', 4);
  assert.equal(lru.get('a'), 'A'); // a is now newer than b
  lru.set('c', 'C', 4);
  assert.equal(lru.get('b'), undefined);
  assert.equal(lru.get('a'), 'A');
  assert.equal(lru.get('c'), 'C');
  lru.set('huge', 'H', 11);
  assert.equal(lru.get('huge'), undefined, 'an entry larger than the budget is not kept');
  lru.set('a', 'A2', 8);
  assert.equal(lru.get('c'), undefined);
  assert.equal(lru.size, 1);
});
