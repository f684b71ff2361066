import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalRepositoryNames } from './mirror.ts';

test('local repository names are looked up once per window, and forgotten on demand', async () => {
  let now = 0;
  const lookups: string[] = [];
  const local = new Set(['team/app']);
  const names = new LocalRepositoryNames(async (name) => (lookups.push(name), local.has(name)), 5_000, () => now);
  assert.equal(await names.exists('team/app'), true);
  assert.equal(await names.exists('library/nginx'), false);
  assert.equal(await names.exists('library/nginx'), false);
  assert.deepEqual(lookups, ['team/app', 'library/nginx'], 'the second ask is answered from memory');
  local.add('library/nginx');
  names.forget('library/nginx');
  assert.equal(await names.exists('library/nginx'), true, 'a forgotten name is looked up again');
  now += 5_000;
  assert.equal(await names.exists('team/app'), true);
  assert.equal(lookups.length, 4, 'after the window, asked again');
  names.forget();
  await names.exists('team/app');
  assert.equal(lookups.length, 5);
});
