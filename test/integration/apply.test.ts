import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { decryptSops } from 'sops-age';
import { parse as parseYaml } from 'yaml';
import { addApplyCommand } from '../../src/cli/apply-command.ts';
import { parseApplyFile } from '../../src/apply/file.ts';
import { KEEP_NEWEST_3_POLICY, planApply, formatPlan, type CurrentState } from '../../src/apply/plan.ts';
import { executePlan, ApplyConflictError } from '../../src/apply/execute.ts';
import { seedFromConfig } from '../../src/cache/seed.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { parseLifecyclePolicy } from '../../src/policy/lifecycle-policy.ts';
import { CredentialStore } from '../../src/secrets/credentials.ts';
import { openStores } from '../../src/stores.ts';
import { encryptSops, tamper } from '../fixtures/sops.ts';

const TOKEN = 'dckr_pat_Sup3rS3cretT0ken_do_not_leak';
const NEW_TOKEN = 'dckr_pat_R0tatedT0ken_also_secret';
const GHCR_TOKEN = 'ghp_An0therS3cretThatMustNotLeak';

const PLAIN = `# the community module's seed format
dockerhub:
  registry: registry-1.docker.io
  username: cistern
  accessToken: ${TOKEN}
ghcr:
  registry: ghcr.io
  username: octo
  accessToken: ${GHCR_TOKEN}
quay:
  registry: quay.io
  freshness: 2h
  concurrency: 8
`;

interface Workspace {
  dir: string;
  config: string;
  data: string;
  /** HOME without a sops keys.txt, so only the variables given count. */
  env: NodeJS.ProcessEnv;
}

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

async function workspace(configExtra = ''): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'cistern-apply-'));
  cleanup.push(dir);
  const data = join(dir, 'data');
  const config = join(dir, 'cistern.yaml');
  await writeFile(config, `storage:\n  directory: ${JSON.stringify(data)}\nlog:\n  level: silent\n${configExtra}`);
  return { dir, config, data, env: { HOME: dir } };
}

async function writeFileIn(ws: Workspace, name: string, text: string): Promise<string> {
  const path = join(ws.dir, name);
  await writeFile(path, text);
  return path;
}

/** Runs `cistern apply` through a fresh commander program, in-process, capturing what it prints. */
async function apply(ws: Workspace, file: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ out: string; error?: Error }> {
  const program = new Command('cistern').exitOverride();
  let out = '';
  addApplyCommand(program, { write: (text) => void (out += text), env: { ...ws.env, ...env } });
  try {
    await program.parseAsync(['apply', file, '--config', ws.config, ...flags], { from: 'user' });
    return { out };
  } catch (err) {
    return { out, error: err as Error };
  }
}

async function applyOk(ws: Workspace, file: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const { out, error } = await apply(ws, file, flags, env);
  if (error) throw error;
  return out.trimEnd().split('\n');
}

async function withStores<T>(ws: Workspace, work: (stores: Awaited<ReturnType<typeof openStores>>, credentials: CredentialStore) => Promise<T>): Promise<T> {
  const stores = await openStores(await loadConfigFile(ws.config));
  try {
    return await work(stores, new CredentialStore(stores.metadata.secrets, stores.box));
  } finally {
    await stores.metadata.close();
  }
}

/** Everything apply could touch, timestamps and ciphertexts included, for before/after comparisons. */
async function snapshot(ws: Workspace) {
  return withStores(ws, async ({ metadata }) => ({
    rules: await metadata.cacheRules.list(),
    templates: await metadata.templates.list(),
    secrets: (await metadata.secrets.list()).map((s) => ({ ...s, ciphertext: s.ciphertext.toString('base64') })),
  }));
}

/** The state without timestamps, with credentials decrypted: what two stores must agree on. */
async function logicalState(ws: Workspace) {
  return withStores(ws, async ({ metadata }, credentials) => ({
    rules: (await metadata.cacheRules.list()).map(({ createdAt: _c, updatedAt: _u, ...rule }) => rule),
    templates: (await metadata.templates.list()).map(({ createdAt: _c, updatedAt: _u, ...template }) => template),
    secrets: await Promise.all(
      (await metadata.secrets.list()).map(async (s) => ({ name: s.name, description: s.description, value: await credentials.get(s.name) })),
    ),
  }));
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

async function ageKeyFile(ws: Workspace, name: string, ...identities: string[]): Promise<string> {
  return writeFileIn(ws, name, `# created: 2024-05-01T12:00:00Z\n${identities.map((id) => `# public key: (comment)\n${id}`).join('\n')}\n`);
}

let identity: string;
let recipient: string;
let otherIdentity: string;

before(async () => {
  identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
  otherIdentity = await generateIdentity();
});

describe('cistern apply: plain YAML', () => {
  let ws: Workspace;
  let file: string;

  before(async () => {
    ws = await workspace();
    file = await writeFileIn(ws, 'registries.yaml', PLAIN);
  });

  it('creates the rules, sealed credential secrets and keep-3 templates', async () => {
    const lines = await applyOk(ws, file);
    assert.deepEqual(lines.slice(0, 8), [
      '+ rule dockerhub (registry-1.docker.io)',
      '+ secret ecr-pullthroughcache/dockerhub (credential of rule dockerhub)',
      '+ template dockerhub (keep the 3 newest images)',
      '+ rule ghcr (ghcr.io)',
      '+ secret ecr-pullthroughcache/ghcr (credential of rule ghcr)',
      '+ template ghcr (keep the 3 newest images)',
      '+ rule quay (quay.io)',
      '+ template quay (keep the 3 newest images)',
    ]);
    assert.match(lines[8]!, /^applied: 8 created, 0 updated, 0 deleted, 0 unchanged$/);
    assert.ok(!lines.join('\n').includes(TOKEN) && !lines.join('\n').includes(GHCR_TOKEN), 'the output never shows a secret value');

    await withStores(ws, async ({ metadata }, credentials) => {
      const dockerhub = await metadata.cacheRules.get('dockerhub');
      assert.equal(dockerhub?.upstreamUrl, 'https://registry-1.docker.io');
      assert.equal(dockerhub?.upstreamKind, 'docker-hub');
      assert.equal(dockerhub?.credentialSecret, 'ecr-pullthroughcache/dockerhub');
      assert.equal(dockerhub?.source, 'api');
      assert.deepEqual(dockerhub?.settings, { appliedBy: 'apply' });
      const quay = await metadata.cacheRules.get('quay');
      assert.deepEqual(quay?.settings, { freshnessMs: 2 * 3_600_000, concurrency: 8, appliedBy: 'apply' });
      assert.equal(quay?.credentialSecret, undefined);

      assert.deepEqual(await credentials.get('ecr-pullthroughcache/dockerhub'), { username: 'cistern', accessToken: TOKEN });
      assert.deepEqual(await credentials.get('ecr-pullthroughcache/ghcr'), { username: 'octo', accessToken: GHCR_TOKEN });
      assert.equal(await credentials.get('ecr-pullthroughcache/quay'), undefined);

      const templates = await metadata.templates.list();
      assert.deepEqual(templates.map((t) => t.prefix), ['dockerhub', 'ghcr', 'quay']);
      for (const template of templates) {
        assert.deepEqual(template.body.appliedFor, ['PULL_THROUGH_CACHE']);
        assert.equal(
          template.body.lifecyclePolicy,
          '{"rules":[{"rulePriority":1,"description":"Keep only the 3 most recent images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}',
        );
        parseLifecyclePolicy(template.body.lifecyclePolicy as string);
      }
    });

    for (const path of await filesUnder(ws.data)) {
      const bytes = await readFile(path);
      assert.ok(!bytes.includes(TOKEN) && !bytes.includes(GHCR_TOKEN), `${path} holds a token in the clear`);
    }
  });

  it('changes nothing when the same file is applied again', async () => {
    const before = await snapshot(ws);
    const lines = await applyOk(ws, file);
    assert.deepEqual(lines, [
      '= rule dockerhub (unchanged)',
      '= secret ecr-pullthroughcache/dockerhub (unchanged)',
      '= template dockerhub (unchanged)',
      '= rule ghcr (unchanged)',
      '= secret ecr-pullthroughcache/ghcr (unchanged)',
      '= template ghcr (unchanged)',
      '= rule quay (unchanged)',
      '= template quay (unchanged)',
      'nothing to change',
    ]);
    assert.deepEqual(await snapshot(ws), before, 'not even a timestamp moved');
  });

  it('updates only the secret whose token changed', async () => {
    await writeFile(file, PLAIN.replace(TOKEN, NEW_TOKEN));
    const lines = await applyOk(ws, file);
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('=')),
      ['~ secret ecr-pullthroughcache/dockerhub (value changed)', 'applied: 0 created, 1 updated, 0 deleted, 7 unchanged'],
    );
    assert.ok(!lines.join('\n').includes(NEW_TOKEN));
    await withStores(ws, async (_stores, credentials) => {
      assert.deepEqual(await credentials.get('ecr-pullthroughcache/dockerhub'), { username: 'cistern', accessToken: NEW_TOKEN });
    });
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    await writeFile(file, 'quay:\n  registry: quay.io\nk8s:\n  registry: registry.k8s.io\n');
    const before = await snapshot(ws);
    const lines = await applyOk(ws, file, ['--dry-run']);
    assert.deepEqual(lines, [
      '~ rule quay (concurrency, freshness)',
      '= template quay (unchanged)',
      '+ rule k8s (registry.k8s.io)',
      '+ template k8s (keep the 3 newest images)',
      '- rule dockerhub (no longer in the file)',
      '- rule ghcr (no longer in the file)',
      '- secret ecr-pullthroughcache/dockerhub (no longer in the file)',
      '- secret ecr-pullthroughcache/ghcr (no longer in the file)',
      '- template dockerhub (no longer in the file)',
      '- template ghcr (no longer in the file)',
      'dry run: 2 to create, 1 to update, 6 to delete, 1 unchanged; nothing was changed',
    ]);
    assert.deepEqual(await snapshot(ws), before);
  });
});

describe('cistern apply: ownership', () => {
  let ws: Workspace;

  before(async () => {
    ws = await workspace('registries:\n  fromconfig:\n    registry: registry.gitlab.com\ntemplates:\n  ROOT:\n    lifecyclePolicy: \'{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":9},"action":{"type":"expire"}}]}\'\n');
    // What a server start seeds from cistern.yaml, and a rule, secret and template made through the API.
    const config = await loadConfigFile(ws.config);
    await withStores(ws, async ({ metadata }, credentials) => {
      await seedFromConfig(config, metadata, credentials, pino({ level: 'silent' }), new Date());
      await credentials.put('ecr-pullthroughcache/viaapi', { username: 'api', accessToken: 'api-token' }, 'made with aws secretsmanager create-secret');
      await metadata.cacheRules.put(
        { prefix: 'viaapi', upstreamUrl: 'https://quay.io', upstreamKind: 'quay', credentialSecret: 'ecr-pullthroughcache/viaapi', settings: {}, source: 'api' },
        new Date(),
      );
      await metadata.templates.put({ prefix: 'viaapi', body: { appliedFor: ['PULL_THROUGH_CACHE'], imageTagMutability: 'IMMUTABLE' }, source: 'api' }, new Date());
    });
  });

  it('deletes what apply created when the file drops it, and nothing else', async () => {
    const file = await writeFileIn(ws, 'a.yaml', PLAIN);
    await applyOk(ws, file);
    const others = async () => {
      const state = await logicalState(ws);
      return {
        rules: state.rules.filter((r) => ['viaapi', 'fromconfig'].includes(r.prefix)),
        templates: state.templates.filter((t) => ['viaapi', 'ROOT'].includes(t.prefix)),
        secrets: state.secrets.filter((s) => s.name === 'ecr-pullthroughcache/viaapi'),
      };
    };
    const untouched = await others();
    assert.equal(untouched.rules.length, 2);
    assert.equal(untouched.templates.length, 2);
    assert.equal(untouched.secrets.length, 1);

    // ghcr is gone from the file; dockerhub loses its credentials.
    await writeFile(file, 'dockerhub:\n  registry: registry-1.docker.io\nquay:\n  registry: quay.io\n  freshness: 2h\n  concurrency: 8\n');
    const lines = await applyOk(ws, file);
    assert.deepEqual(lines.slice(0, -1), [
      '~ rule dockerhub (credential removed)',
      '= template dockerhub (unchanged)',
      '= rule quay (unchanged)',
      '= template quay (unchanged)',
      '- rule ghcr (no longer in the file)',
      '- secret ecr-pullthroughcache/dockerhub (rule dockerhub no longer has credentials)',
      '- secret ecr-pullthroughcache/ghcr (no longer in the file)',
      '- template ghcr (no longer in the file)',
    ]);
    const state = await logicalState(ws);
    assert.deepEqual(state.rules.map((r) => r.prefix).sort(), ['dockerhub', 'fromconfig', 'quay', 'viaapi']);
    assert.equal(state.rules.find((r) => r.prefix === 'dockerhub')?.credentialSecret, undefined);
    assert.deepEqual(state.templates.map((t) => t.prefix).sort(), ['ROOT', 'dockerhub', 'quay', 'viaapi']);
    assert.deepEqual(state.secrets.map((s) => s.name), ['ecr-pullthroughcache/viaapi']);
    assert.deepEqual(await others(), untouched);

    // An empty mapping removes everything apply made, and still nothing else.
    await writeFile(file, '{}\n');
    await applyOk(ws, file);
    const empty = await logicalState(ws);
    assert.deepEqual(empty.rules.map((r) => r.prefix).sort(), ['fromconfig', 'viaapi']);
    assert.deepEqual(empty.templates.map((t) => t.prefix).sort(), ['ROOT', 'viaapi']);
    assert.deepEqual(await others(), untouched);
  });

  it('refuses, changing nothing, to take over a rule, secret or template it did not create', async () => {
    const file = await writeFileIn(ws, 'conflict.yaml', 'viaapi:\n  registry: quay.io\n  username: me\n  accessToken: mine\nfromconfig:\n  registry: registry.gitlab.com\nnewone:\n  registry: ghcr.io\n');
    const before = await snapshot(ws);
    const { out, error } = await apply(ws, file);
    assert.ok(error instanceof ApplyConflictError, String(error));
    assert.match(out, /^! rule viaapi \(exists, created through the API; apply changes only what it created\)$/m);
    assert.match(out, /^! secret ecr-pullthroughcache\/viaapi \(exists, created through Secrets Manager; apply changes only what it created\)$/m);
    assert.match(out, /^! template viaapi \(exists, created through the API; apply changes only what it created\)$/m);
    assert.match(out, /^! rule fromconfig \(listed in the config file's registries/m);
    assert.match(out, /^\+ rule newone \(ghcr\.io\)$/m);
    assert.match(error.message, /changed nothing/);
    assert.deepEqual(await snapshot(ws), before);
  });

  it('rejects invalid entries, naming each, before touching the store', async () => {
    const file = await writeFileIn(
      ws,
      'invalid.yaml',
      'Bad_Prefix:\n  registry: ghcr.io\nnoregistry:\n  username: u\n  accessToken: t\nhalfcreds:\n  registry: quay.io\n  username: u\nbadkind:\n  registry: quay.io\n  kind: dockerhub\nok:\n  registry: ghcr.io\n',
    );
    const before = await snapshot(ws);
    const { error } = await apply(ws, file);
    assert.ok(error);
    assert.match(error.message, /entry "Bad_Prefix": a prefix is 2-30 characters/);
    assert.match(error.message, /entry "noregistry": registry is required/);
    assert.match(error.message, /entry "halfcreds": give both username and accessToken, or neither/);
    assert.match(error.message, /entry "badkind": kind: /);
    assert.doesNotMatch(error.message, /entry "ok"/);
    assert.deepEqual(await snapshot(ws), before);
  });
});

describe('cistern apply: SOPS with age', () => {
  let ws: Workspace;
  let keyFile: string;
  const document = parseYaml(PLAIN) as Record<string, Record<string, string | number>>;

  before(async () => {
    ws = await workspace();
    keyFile = await ageKeyFile(ws, 'keys.txt', identity);
  });

  it('applies an encrypted file exactly as the plain one', async () => {
    const { text } = await encryptSops(document, { recipients: [recipient] });
    assert.ok(!text.includes(TOKEN) && !text.includes('registry-1.docker.io'));
    const encrypted = await writeFileIn(ws, 'registries.enc.yaml', text);
    const lines = await applyOk(ws, encrypted, [], { SOPS_AGE_KEY_FILE: keyFile });
    assert.equal(lines.filter((l) => l.startsWith('+')).length, 8);

    // The plain file now finds nothing to do: the two are the same state.
    const plain = await writeFileIn(ws, 'registries.yaml', PLAIN);
    assert.deepEqual((await applyOk(ws, plain)).at(-1), 'nothing to change');

    // And a fresh store given the plain file agrees field for field.
    const other = await workspace();
    await applyOk(other, await writeFileIn(other, 'registries.yaml', PLAIN));
    assert.deepEqual(await logicalState(ws), await logicalState(other));
  });

  it('takes the key from SOPS_AGE_KEY, and from a key file among other keys and comments', async () => {
    const { text } = await encryptSops(document, { recipients: [await identityToRecipient(otherIdentity), recipient] });
    const file = await writeFileIn(ws, 'multi.enc.yaml', text);
    assert.equal((await applyOk(ws, file, ['--dry-run'], { SOPS_AGE_KEY: identity })).at(-1), 'dry run: 0 to create, 0 to update, 0 to delete, 8 unchanged; nothing was changed');
    const both = await ageKeyFile(ws, 'both.txt', (await generateIdentity()), identity);
    assert.equal((await applyOk(ws, file, ['--dry-run'], { SOPS_AGE_KEY_FILE: both })).at(-1), 'dry run: 0 to create, 0 to update, 0 to delete, 8 unchanged; nothing was changed');
    // The user's default sops key file, as sops finds it.
    const xdg = join(ws.dir, 'xdg');
    await mkdir(join(xdg, 'sops', 'age'), { recursive: true });
    await writeFile(join(xdg, 'sops', 'age', 'keys.txt'), `${identity}\n`);
    assert.equal((await applyOk(ws, file, ['--dry-run'], { XDG_CONFIG_HOME: xdg })).at(-1), 'dry run: 0 to create, 0 to update, 0 to delete, 8 unchanged; nothing was changed');
  });

  it('says clearly when no identity matches the recipients, or none is given', async () => {
    const { text } = await encryptSops(document, { recipients: [recipient] });
    const file = await writeFileIn(ws, 'wrongkey.enc.yaml', text);
    const before = await snapshot(ws);
    const wrong = await ageKeyFile(ws, 'wrong.txt', otherIdentity);
    const { error } = await apply(ws, file, [], { SOPS_AGE_KEY_FILE: wrong });
    assert.ok(error);
    assert.match(error.message, /no age identity matches the file's recipients/);
    assert.ok(error.message.includes(recipient), 'names the recipient the file is encrypted for');
    assert.ok(error.message.includes(await identityToRecipient(otherIdentity)), 'and the recipient of the key given');
    assert.ok(!error.message.includes(otherIdentity), 'never the secret key');

    const none = await apply(ws, file);
    assert.match(none.error?.message ?? '', /no age identity was given: set SOPS_AGE_KEY_FILE/);
    assert.deepEqual(await snapshot(ws), before);
  });

  it('detects tampering: a changed value, a moved value, a dropped entry, a changed MAC or timestamp', async () => {
    const { text } = await encryptSops(document, { recipients: [recipient] });
    const lines = text.split('\n');
    const valueOf = (key: string, nth = 0) => lines.filter((l) => l.trimStart().startsWith(`${key}: ENC[`))[nth]!.split(': ')[1]!;
    const token = valueOf('accessToken');
    const data = /data:([^,]+)/.exec(token)![1]!;
    const flipped = (data[0] === 'A' ? 'B' : 'A') + data.slice(1);
    const cases: [string, string, RegExp][] = [
      ['a flipped ciphertext byte', tamper(text, token, token.replace(data, flipped)), /the value at dockerhub:accessToken: fails authentication/],
      ['values swapped between entries', tamper(tamper(text, token, 'SWAP'), valueOf('accessToken', 1), token).replace('SWAP', valueOf('accessToken', 1)), /fails authentication/],
      ['an entry removed', tamper(text, /quay:\n(?: {2}.*\n)+/, ''), /the values do not hash to the stored MAC/],
      ['a plain entry added', tamper(text, 'sops:\n', 'evil:\n  registry: evil.example\nsops:\n'), /should be encrypted/],
      ['a changed MAC', tamper(text, /mac: ENC\[AES256_GCM,data:(.)/, 'mac: ENC[AES256_GCM,data:$1$1'), /the MAC fails authentication|values do not hash/],
      ['a changed lastmodified', tamper(text, /lastmodified: "(\d{4})/, 'lastmodified: "1999'), /the MAC fails authentication/],
      ['no MAC', tamper(text, /\n {2}mac: .*/, ''), /the file has no MAC/],
    ];
    const before = await snapshot(ws);
    for (const [what, altered, detail] of cases) {
      assert.notEqual(altered, text, what);
      const { error } = await apply(ws, await writeFileIn(ws, 'tampered.enc.yaml', altered), [], { SOPS_AGE_KEY_FILE: keyFile });
      assert.ok(error, `${what}: accepted`);
      assert.match(error.message, /the file's MAC does not match: it was altered or the key is wrong/, what);
      assert.match(error.message, detail, what);
      assert.ok(!error.message.includes(TOKEN), `${what}: the error shows a secret`);
    }
    assert.deepEqual(await snapshot(ws), before);
  });

  it('refuses ENC[...] values whose sops metadata was removed', async () => {
    const { text } = await encryptSops(document, { recipients: [recipient] });
    const stripped = text.slice(0, text.indexOf('sops:\n'));
    const { error } = await apply(ws, await writeFileIn(ws, 'stripped.yaml', stripped), [], { SOPS_AGE_KEY_FILE: keyFile });
    assert.match(error?.message ?? '', /SOPS-encrypted values \(ENC\[\.\.\.\]\) but no sops metadata/);
  });
});

describe('SOPS compatibility of the test encryptor and the decryptor', () => {
  const sample = {
    dockerhub: { registry: 'registry-1.docker.io', username: 'cistern', accessToken: TOKEN, concurrency: 16, freshness: '6h' },
    odd: { flag: true, off: false, ratio: 0.25, empty: '', nothing: null, list: ['a', 'b', 3], nested: { deep: 'x' }, note_unencrypted: 'in the clear' },
  };

  it('sops-age, an independent decryptor, reads what the fixture writes', async () => {
    const { text } = await encryptSops(sample, { recipients: [recipient] });
    assert.match(text, /^ {2}note_unencrypted: in the clear$/m, 'the unencrypted suffix is honoured');
    assert.match(text, /^ {2}lastmodified: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$/m);
    assert.match(text, /^ {2}version: 3\.8\.1$/m);
    assert.deepEqual(await decryptSops(text, { secretKey: identity, fileType: 'yaml' }), sample);
  });

  it("Cistern's decryptor reads it too, verifying the MAC, with each selection option sops has", async () => {
    for (const options of [{}, { encryptedRegex: '^(username|accessToken)$' }, { unencryptedRegex: '^registry$' }, { encryptedSuffix: 'Token' }, { macOnlyEncrypted: true }]) {
      const { text } = await encryptSops({ dockerhub: sample.dockerhub }, { recipients: [recipient], ...options });
      if ('encryptedRegex' in options) assert.match(text, /registry: registry-1\.docker\.io/);
      const desired = await parseApplyFile(text, 'x.enc.yaml', { env: { SOPS_AGE_KEY: identity, HOME: '/nonexistent' } });
      assert.equal(desired.encrypted, true);
      assert.deepEqual(desired.entries, [
        { prefix: 'dockerhub', registry: 'registry-1.docker.io', concurrency: 16, freshnessMs: 6 * 3_600_000, credential: { username: 'cistern', accessToken: TOKEN } },
      ]);
    }
  });
});

describe('planApply', () => {
  const rule = (prefix: string, extra: Partial<CurrentState['rules'][number]> = {}): CurrentState['rules'][number] => ({
    prefix,
    upstreamUrl: 'https://ghcr.io',
    upstreamKind: 'github-container-registry',
    settings: { appliedBy: 'apply' },
    source: 'api',
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...extra,
  });

  it('is pure: the same inputs give the same plan and are not modified', () => {
    const current: CurrentState = { rules: [rule('ghcr')], templates: [], secrets: [] };
    const frozen = structuredClone(current);
    const desired = [{ prefix: 'ghcr', registry: 'ghcr.io', credential: { username: 'u', accessToken: 'secret-value' } }];
    const first = planApply(desired, current);
    assert.deepEqual(planApply(desired, current), first);
    assert.deepEqual(current, frozen);
    assert.deepEqual(formatPlan(first), [
      '~ rule ghcr (credential added)',
      '+ secret ecr-pullthroughcache/ghcr (credential of rule ghcr)',
      '+ template ghcr (keep the 3 newest images)',
    ]);
    assert.ok(!formatPlan(first).join().includes('secret-value'));
  });

  it('will not delete a secret a rule it does not own still uses', async () => {
    const current: CurrentState = {
      rules: [rule('other', { settings: {}, credentialSecret: 'ecr-pullthroughcache/old' })],
      templates: [],
      secrets: [{ name: 'ecr-pullthroughcache/old', description: 'credential for cache rule old (from cistern apply)', credential: { username: 'u', accessToken: 't' } }],
    };
    const plan = planApply([], current);
    assert.deepEqual(formatPlan(plan), ['! secret ecr-pullthroughcache/old (apply would delete it, but it is the credential of rule other; change that rule first)']);
    await assert.rejects(executePlan(plan, { metadata: undefined as never, credentials: undefined as never }), ApplyConflictError);
  });

  it('puts back a template whose policy was changed through the API, and replaces an unreadable secret', () => {
    const current: CurrentState = {
      rules: [rule('ghcr', { credentialSecret: 'ecr-pullthroughcache/ghcr' })],
      templates: [{ prefix: 'ghcr', body: { appliedBy: 'apply', lifecyclePolicy: '{}' }, source: 'api', createdAt: new Date(0), updatedAt: new Date(0) }],
      secrets: [{ name: 'ecr-pullthroughcache/ghcr', description: 'credential for cache rule ghcr (from cistern apply)', unreadable: true }],
    };
    const plan = planApply([{ prefix: 'ghcr', registry: 'ghcr.io', credential: { username: 'u', accessToken: 't' } }], current);
    assert.deepEqual(formatPlan(plan), [
      '= rule ghcr (unchanged)',
      '~ secret ecr-pullthroughcache/ghcr (the stored value cannot be decrypted; replacing it)',
      '~ template ghcr (appliedFor, description, imageTagMutability, lifecyclePolicy, resourceTags, scanOnPull changed)',
    ]);
    const template = plan.actions.find((a) => a.resource === 'template');
    assert.equal(template?.resource === 'template' && template.spec?.body.lifecyclePolicy, KEEP_NEWEST_3_POLICY);
  });
});
