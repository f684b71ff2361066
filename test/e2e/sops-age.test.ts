/**
 * Cross-checks the test SOPS encryptor's age layer with the real `age` program (Debian's age package):
 * the data key sealed in sops.age[].enc opens with the recipient's identity.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { parse as parseYaml } from 'yaml';
import { encryptSops } from '../fixtures/sops.ts';

it('the age CLI opens the data key in sops.age[].enc', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-age-'));
  try {
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const { text, dataKey } = await encryptSops({ dockerhub: { registry: 'registry-1.docker.io', username: 'u', accessToken: 't' } }, { recipients: [recipient] });
    const enc = (parseYaml(text) as { sops: { age: { enc: string }[] } }).sops.age[0]!.enc;
    const key = join(dir, 'keys.txt');
    await writeFile(key, `${identity}\n`, { mode: 0o600 });
    const opened = execFileSync('/usr/bin/age', ['-d', '-i', key], { input: enc });
    assert.deepEqual(opened, dataKey);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
