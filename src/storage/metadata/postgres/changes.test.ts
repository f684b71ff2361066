import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChange } from './changes.ts';

test('change notices: named repositories, "anything", the older bare form, and garbage', () => {
  assert.deepEqual(parseChange('{"i" : "cistern-a", "r" : ["team/app", "hub/nginx"]}'), { instance: 'cistern-a', repositories: ['team/app', 'hub/nginx'] });
  assert.deepEqual(parseChange('{"i" : "cistern-a", "r" : null}'), { instance: 'cistern-a' }, 'no names: anything may have changed');
  assert.deepEqual(parseChange('{"i" : "cistern-a"}'), { instance: 'cistern-a' });
  assert.deepEqual(parseChange('cistern-b'), { instance: 'cistern-b' }, "migration 4's notices were the bare writer id");
  assert.deepEqual(parseChange('{"i": "x", "r": [1, 2]}'), { instance: 'x' }, 'names that are not strings name nothing');
  assert.deepEqual(parseChange('{not json'), { instance: '' }, 'an unreadable notice is somebody else\'s: anything may have changed');
});
