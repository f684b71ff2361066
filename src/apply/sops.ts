import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Decrypter, armor, identityToRecipient } from 'age-encryption';

/**
 * Decryption of SOPS files whose data key is encrypted to age recipients, with SOPS's integrity check.
 *
 * What SOPS (3.x, getsops/sops) does, and so what this does:
 * - every leaf value is `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:str|int|float|bool|bytes]`,
 *   AES-256-GCM under the 32-byte data key, with the path of mapping keys joined by ':' plus a trailing ':'
 *   as associated data (list items carry the path of their list: no index);
 * - which values are encrypted follows the metadata (`unencrypted_suffix`, `encrypted_suffix`,
 *   `unencrypted_regex`, `encrypted_regex`, matched against every key on the path); an empty string and
 *   null are never encrypted;
 * - the MAC is SHA-512 over the cleartext of every value in document order (only the encrypted ones when
 *   `mac_only_encrypted`), in SOPS's canonical text (ints in decimal, floats shortest, booleans
 *   `True`/`False`), as upper-case hex; it is stored in `sops.mac`, encrypted like a value with the
 *   `lastmodified` timestamp (RFC 3339) as associated data;
 * - the data key is an armored age file in `sops.age[].enc`, one per recipient.
 */

/** A YAML document as SOPS sees it: mappings keep their key order (the MAC depends on it). */
export type TreeValue = string | number | bigint | boolean | null | TreeValue[] | TreeMap;
export type TreeMap = Map<string, TreeValue>;

export class SopsError extends Error {
  override name = 'SopsError';
}

export const MAC_MISMATCH = "the file's MAC does not match: it was altered or the key is wrong";

/** The file's values or its MAC fail authentication: something was altered. */
export class SopsIntegrityError extends SopsError {
  override name = 'SopsIntegrityError';
  constructor(detail: string) {
    super(`${MAC_MISMATCH} (${detail})`);
  }
}

/** None of the available age identities can decrypt the file's data key. */
export class SopsKeyError extends SopsError {
  override name = 'SopsKeyError';
}

export interface AgeRecipientEntry {
  recipient: string;
  /** The data key as an armored age file. */
  enc: string;
}

export interface SopsMetadata {
  age: AgeRecipientEntry[];
  lastmodified: string;
  mac: string;
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: string;
  encryptedRegex?: string;
  macOnlyEncrypted: boolean;
  version?: string;
}

/** Age identities (`AGE-SECRET-KEY-1...`) and where they came from, for error messages. */
export interface AgeIdentities {
  identities: string[];
  /** e.g. `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE (/path/keys.txt)`. */
  sources: string[];
}

const METADATA_KEYS = ['mac', 'lastmodified', 'version', 'age', 'key_groups', 'kms', 'pgp', 'gcp_kms', 'azure_kv', 'hc_vault'];

/** A top-level `sops` mapping carrying SOPS metadata (a rule could be named `sops`; it would have `registry`). */
export function isSopsDocument(tree: TreeMap): boolean {
  const sops = tree.get('sops');
  return sops instanceof Map && METADATA_KEYS.some((key) => sops.has(key));
}

function optionalString(meta: TreeMap, key: string): string | undefined {
  const value = meta.get(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new SopsError(`sops.${key} is not a string`);
  return value;
}

function ageEntries(list: TreeValue | undefined, where: string): AgeRecipientEntry[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new SopsError(`${where} is not a list`);
  return list.map((item, index) => {
    const recipient = item instanceof Map ? item.get('recipient') : undefined;
    const enc = item instanceof Map ? item.get('enc') : undefined;
    if (typeof enc !== 'string') throw new SopsError(`${where}[${index}] has no enc (the encrypted data key)`);
    return { recipient: typeof recipient === 'string' ? recipient : '(unnamed)', enc };
  });
}

export function parseSopsMetadata(value: TreeValue | undefined): SopsMetadata {
  if (!(value instanceof Map)) throw new SopsError('the sops metadata is not a mapping');
  const age = ageEntries(value.get('age'), 'sops.age');
  const groups = value.get('key_groups');
  if (groups !== undefined && groups !== null) {
    if (!Array.isArray(groups)) throw new SopsError('sops.key_groups is not a list');
    if (groups.length > 1) throw new SopsError('the file splits its data key across key groups (Shamir secret sharing), which Cistern does not support');
    const group = groups[0];
    if (group instanceof Map) age.push(...ageEntries(group.get('age'), 'sops.key_groups[0].age'));
  }
  if (age.length === 0) {
    const others = ['kms', 'gcp_kms', 'azure_kv', 'hc_vault', 'pgp'].filter((key) => {
      const list = value.get(key);
      return Array.isArray(list) && list.length > 0;
    });
    throw new SopsError(
      `the file is SOPS-encrypted without age recipients${others.length ? ` (it uses ${others.join(', ')})` : ''}; Cistern decrypts age only: re-encrypt it with sops --age`,
    );
  }
  const lastmodified = value.get('lastmodified');
  if (typeof lastmodified !== 'string') throw new SopsError('sops.lastmodified is missing');
  const mac = value.get('mac');
  const version = optionalString(value, 'version');
  return {
    age,
    lastmodified,
    mac: typeof mac === 'string' ? mac : '',
    ...optionalField('unencryptedSuffix', optionalString(value, 'unencrypted_suffix')),
    ...optionalField('encryptedSuffix', optionalString(value, 'encrypted_suffix')),
    ...optionalField('unencryptedRegex', optionalString(value, 'unencrypted_regex')),
    ...optionalField('encryptedRegex', optionalString(value, 'encrypted_regex')),
    macOnlyEncrypted: value.get('mac_only_encrypted') === true,
    ...optionalField('version', version),
  };
}

function optionalField<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** Go's RE2 patterns as JavaScript ones: a leading `(?i)` becomes the `i` flag. */
function goRegex(pattern: string, field: string): RegExp {
  const flags = pattern.startsWith('(?i)') ? 'i' : '';
  try {
    return new RegExp(flags ? pattern.slice(4) : pattern, flags);
  } catch {
    throw new SopsError(`sops.${field} ${JSON.stringify(pattern)} is not a regular expression Cistern can evaluate`);
  }
}

/** Whether SOPS encrypts the value at `path`, by the rules the file was encrypted with. */
export function isEncryptedPath(path: string[], meta: Pick<SopsMetadata, 'unencryptedSuffix' | 'encryptedSuffix' | 'unencryptedRegex' | 'encryptedRegex'>): boolean {
  let encrypted = true;
  if (meta.unencryptedSuffix && path.some((key) => key.endsWith(meta.unencryptedSuffix!))) encrypted = false;
  if (meta.encryptedSuffix) encrypted = path.some((key) => key.endsWith(meta.encryptedSuffix!));
  if (meta.unencryptedRegex) {
    const regex = goRegex(meta.unencryptedRegex, 'unencrypted_regex');
    if (path.some((key) => regex.test(key))) encrypted = false;
  }
  if (meta.encryptedRegex) {
    const regex = goRegex(meta.encryptedRegex, 'encrypted_regex');
    encrypted = path.some((key) => regex.test(key));
  }
  return encrypted;
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest round-trip digits, never an exponent. */
export function formatGoFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Object.is(value, -0)) return '-0';
  const text = String(value);
  const e = text.indexOf('e');
  if (e === -1) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exponent = Number(text.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const point = (dot === -1 ? mantissa.length : dot) + exponent;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

/** SOPS's ToBytes: the text a value contributes to the MAC. */
export function macText(value: string | number | bigint | boolean | Buffer): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'bigint') return Buffer.from(value.toString(), 'utf8');
  if (typeof value === 'number') return Buffer.from(formatGoFloat(value), 'utf8');
  return Buffer.from(value ? 'True' : 'False', 'utf8');
}

const ENC = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]$/s;

/** One `ENC[...]` value decrypted: the plaintext bytes and SOPS's type name. */
function openValue(text: string, key: Buffer, aad: string, what: string): { plaintext: Buffer; type: string } {
  const match = ENC.exec(text);
  if (!match) throw new SopsIntegrityError(`${what} should be encrypted but is not in SOPS's ENC[AES256_GCM,...] format`);
  const [, data, iv, tag, type] = match as unknown as [string, string, string, string, string];
  const ivBytes = Buffer.from(iv, 'base64');
  const tagBytes = Buffer.from(tag, 'base64');
  if (ivBytes.length === 0 || tagBytes.length !== 16) throw new SopsIntegrityError(`${what} has a malformed iv or tag`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tagBytes);
    return { plaintext: Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]), type };
  } catch {
    throw new SopsIntegrityError(`${what} fails authentication`);
  }
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A decrypted value as the type SOPS recorded (Go's strconv parsing), and the text it adds to the MAC. */
function typedValue(plaintext: Buffer, type: string, what: string): { value: TreeValue; mac: Buffer } {
  const text = plaintext.toString('utf8');
  switch (type) {
    case 'str':
      return { value: text, mac: plaintext };
    case 'bytes':
      return { value: text, mac: plaintext };
    case 'int': {
      if (!/^[+-]?\d+$/.test(text)) throw new SopsError(`${what} is marked int but does not hold an integer`);
      const value = BigInt(text.replace(/^\+/, ''));
      return { value, mac: macText(value) };
    }
    case 'float': {
      const value = /^[+-]?inf(inity)?$/i.test(text) ? (text.startsWith('-') ? -Infinity : Infinity) : /^nan$/i.test(text) ? NaN : Number(text.replace(/_/g, ''));
      if (text.trim() === '' || (Number.isNaN(value) && !/^nan$/i.test(text))) throw new SopsError(`${what} is marked float but does not hold a number`);
      return { value, mac: macText(value) };
    }
    case 'bool': {
      if (!GO_TRUE.has(text) && !GO_FALSE.has(text)) throw new SopsError(`${what} is marked bool but does not hold a boolean`);
      const value = GO_TRUE.has(text);
      return { value, mac: macText(value) };
    }
    default:
      throw new SopsError(`${what} has the unknown SOPS type ${JSON.stringify(type)}`);
  }
}

/** `name:` for error messages: the path as SOPS writes its associated data, never a value. */
function describePath(path: string[]): string {
  return `the value at ${path.join(':')}:`;
}

/** SOPS writes lastmodified with Go's time.RFC3339, which has no fractional seconds. */
function macAad(lastmodified: string): string {
  return lastmodified.replace(/\.\d+(?=Z|[+-]\d\d:\d\d$)/, '');
}

/**
 * Decrypts the data values of a SOPS document with the 32-byte data key and verifies the MAC. Returns the
 * document without its `sops` metadata.
 */
export function decryptTree(tree: TreeMap, dataKey: Buffer, meta: SopsMetadata): TreeMap {
  const hash = createHash('sha512');
  const walk = (value: TreeValue, path: string[]): TreeValue => {
    if (value instanceof Map) {
      const out: TreeMap = new Map();
      for (const [key, item] of value) out.set(key, walk(item, [...path, key]));
      return out;
    }
    if (Array.isArray(value)) return value.map((item) => walk(item, path));
    if (value === null) return null;
    const encrypted = isEncryptedPath(path, meta);
    let result: TreeValue;
    let mac: Buffer;
    if (!encrypted) {
      result = value;
      mac = macText(value);
    } else if (value === '') {
      result = '';
      mac = Buffer.alloc(0);
    } else {
      if (typeof value !== 'string') throw new SopsIntegrityError(`${describePath(path)} should be encrypted but is a plain ${typeof value === 'bigint' ? 'number' : typeof value}`);
      const { plaintext, type } = openValue(value, dataKey, `${path.join(':')}:`, describePath(path));
      ({ value: result, mac } = typedValue(plaintext, type, describePath(path)));
    }
    if (!meta.macOnlyEncrypted || encrypted) hash.update(mac);
    return result;
  };
  const out: TreeMap = new Map();
  for (const [key, value] of tree) {
    if (key !== 'sops') out.set(key, walk(value, [key]));
  }
  const computed = Buffer.from(hash.digest('hex').toUpperCase(), 'utf8');
  if (!meta.mac) throw new SopsIntegrityError('the file has no MAC');
  const stored = openValue(meta.mac, dataKey, macAad(meta.lastmodified), 'the MAC');
  if (stored.plaintext.length !== computed.length || !timingSafeEqual(stored.plaintext, computed)) {
    throw new SopsIntegrityError('the values do not hash to the stored MAC');
  }
  return out;
}

/** Identity lines as age reads them: blank lines and `#` comments are skipped. */
export function parseAgeIdentities(text: string, source: string): string[] {
  const identities: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('AGE-PLUGIN-')) throw new SopsError(`${source}, line ${index + 1}: age plugin identities are not supported`);
    if (!line.startsWith('AGE-SECRET-KEY-1') && !line.startsWith('AGE-SECRET-KEY-PQ-1')) {
      throw new SopsError(`${source}, line ${index + 1}: not an age identity (AGE-SECRET-KEY-1...)`);
    }
    identities.push(line);
  });
  return identities;
}

function userConfigDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CONFIG_HOME) return env.XDG_CONFIG_HOME;
  const home = env.HOME ?? homedir();
  if (process.platform === 'darwin') return join(home, 'Library', 'Application Support');
  if (process.platform === 'win32') return env.APPDATA;
  return home ? join(home, '.config') : undefined;
}

/**
 * The age identities SOPS would use: `SOPS_AGE_KEY` (the keys themselves), `SOPS_AGE_KEY_FILE` (a file of
 * them), and the user's `sops/age/keys.txt` under the config directory when it exists.
 */
export async function loadAgeIdentities(env: NodeJS.ProcessEnv = process.env): Promise<AgeIdentities> {
  const identities: string[] = [];
  const sources: string[] = [];
  const add = async (found: string[], source: string) => {
    for (const identity of found) {
      try {
        await identityToRecipient(identity);
      } catch {
        throw new SopsError(`${source} holds a malformed age identity`);
      }
    }
    if (found.length > 0) {
      identities.push(...found);
      sources.push(source);
    }
  };
  if (env.SOPS_AGE_KEY) await add(parseAgeIdentities(env.SOPS_AGE_KEY, 'SOPS_AGE_KEY'), 'SOPS_AGE_KEY');
  if (env.SOPS_AGE_KEY_FILE) {
    let text: string;
    try {
      text = await readFile(env.SOPS_AGE_KEY_FILE, 'utf8');
    } catch (err) {
      throw new SopsError(`cannot read SOPS_AGE_KEY_FILE ${env.SOPS_AGE_KEY_FILE}: ${(err as Error).message}`);
    }
    const source = `SOPS_AGE_KEY_FILE (${env.SOPS_AGE_KEY_FILE})`;
    await add(parseAgeIdentities(text, source), source);
  }
  const configDir = userConfigDir(env);
  if (configDir) {
    const path = join(configDir, 'sops', 'age', 'keys.txt');
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw new SopsError(`cannot read ${path}: ${err.message}`);
    });
    if (text !== undefined) await add(parseAgeIdentities(text, path), path);
  }
  return { identities, sources };
}

const NO_MATCH = /no identity matched/i;

/** The 32-byte data key, from the first age entry one of the identities opens. */
export async function decryptDataKey(meta: SopsMetadata, keys: AgeIdentities): Promise<Buffer> {
  const recipients = meta.age.map((entry) => entry.recipient).join(', ');
  if (keys.identities.length === 0) {
    throw new SopsKeyError(
      `the file is SOPS-encrypted for age recipient(s) ${recipients}, but no age identity was given: set SOPS_AGE_KEY_FILE to a file of AGE-SECRET-KEY-1... lines, or SOPS_AGE_KEY to the key`,
    );
  }
  const decrypter = new Decrypter();
  for (const identity of keys.identities) decrypter.addIdentity(identity);
  const failures: string[] = [];
  for (const entry of meta.age) {
    let file: Uint8Array;
    try {
      file = armor.decode(entry.enc);
    } catch (err) {
      failures.push(`the data key for ${entry.recipient} is not an armored age file (${(err as Error).message})`);
      continue;
    }
    try {
      const key = Buffer.from(await decrypter.decrypt(file));
      if (key.length !== 32) throw new SopsError(`the data key for ${entry.recipient} is ${key.length} bytes, not 32`);
      return key;
    } catch (err) {
      if (err instanceof SopsError) throw err;
      if (!NO_MATCH.test((err as Error).message)) failures.push(`the data key for ${entry.recipient} cannot be decrypted (${(err as Error).message}): it was altered`);
    }
  }
  if (failures.length > 0) throw new SopsIntegrityError(failures.join('; '));
  const ours = await Promise.all(keys.identities.map((identity) => identityToRecipient(identity)));
  throw new SopsKeyError(
    `no age identity matches the file's recipients: the file is encrypted for ${recipients}; the identities from ${keys.sources.join(', ')} are for ${ours.join(', ')}`,
  );
}

/** Decrypts a SOPS document (with its `sops` metadata) and verifies its MAC. */
export async function decryptSopsDocument(tree: TreeMap, keys: AgeIdentities): Promise<TreeMap> {
  const meta = parseSopsMetadata(tree.get('sops'));
  const dataKey = await decryptDataKey(meta, keys);
  return decryptTree(tree, dataKey, meta);
}
