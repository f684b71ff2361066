import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { Credential } from '../secrets/credentials.ts';
import { applyEntry, isRulePrefix, PREFIX_MESSAGE } from './schema.ts';
import { decryptSopsDocument, isSopsDocument, loadAgeIdentities, type TreeMap, type TreeValue } from './sops.ts';

/** One rule the file asks for, validated. */
export interface DesiredEntry {
  prefix: string;
  /** As written: a host (`ghcr.io`) or a URL (`http://127.0.0.1:5001`). */
  registry: string;
  kind?: string;
  upstreamPrefix?: string;
  freshnessMs?: number;
  concurrency?: number;
  credential?: Credential;
}

export interface DesiredState {
  /** In the file's order. */
  entries: DesiredEntry[];
  /** Whether the file was SOPS-encrypted. */
  encrypted: boolean;
}

export class ApplyFileError extends Error {
  override name = 'ApplyFileError';
}

/** A YAML (or JSON) document with its mappings as ordered Maps, ints as bigints: what SOPS hashes. */
export function parseYamlTree(text: string, name: string): TreeMap {
  const documents = parseAllDocuments(text, { intAsBigInt: true });
  if (!Array.isArray(documents)) throw new ApplyFileError(`${name} has no YAML document`);
  if (documents.length > 1) throw new ApplyFileError(`${name} holds ${documents.length} YAML documents; give one`);
  const document = documents[0];
  if (!document) throw new ApplyFileError(`${name} is empty; to remove everything apply created, apply a file holding {}`);
  const error = document.errors[0];
  if (error) throw new ApplyFileError(`${name} is not valid YAML: ${error.message}`);
  const root = treeValue(document.toJS({ mapAsMap: true }) as unknown, name);
  if (root === null) throw new ApplyFileError(`${name} is empty; to remove everything apply created, apply a file holding {}`);
  if (!(root instanceof Map)) throw new ApplyFileError(`${name} must be a mapping of rule prefixes to registries`);
  return root;
}

function treeValue(value: unknown, name: string): TreeValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((item) => treeValue(item, name));
  if (value instanceof Map) {
    const out: TreeMap = new Map();
    for (const [key, item] of value) out.set(String(key), treeValue(item, name));
    return out;
  }
  throw new ApplyFileError(`${name} holds a value of a kind Cistern does not read (${Object.prototype.toString.call(value)})`);
}

/** Plain JavaScript values for validation: Maps as objects, safe bigints as numbers. */
function plain(value: TreeValue): unknown {
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, item]) => [key, plain(item)]));
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  return value;
}

function containsSopsValue(value: TreeValue): boolean {
  if (typeof value === 'string') return value.startsWith('ENC[AES256_GCM,');
  if (value instanceof Map) return [...value.values()].some(containsSopsValue);
  if (Array.isArray(value)) return value.some(containsSopsValue);
  return false;
}

/** Validates every entry; all problems are reported together, each naming its entry. */
export function desiredFromTree(tree: TreeMap, name: string): DesiredEntry[] {
  const problems: string[] = [];
  const entries: DesiredEntry[] = [];
  for (const [prefix, value] of tree) {
    const label = `entry ${JSON.stringify(prefix)}`;
    if (!isRulePrefix(prefix)) {
      problems.push(`${label}: ${PREFIX_MESSAGE}`);
      continue;
    }
    const parsed = applyEntry.safeParse(plain(value));
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.join('.');
        if (issue.code === 'invalid_type' && field === '') {
          problems.push(`${label}: expected a mapping with registry (and optionally username, accessToken, kind, upstreamPrefix, freshness, concurrency)`);
        } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
          problems.push(`${label}: ${field} is required`);
        } else {
          problems.push(`${label}: ${field ? `${field}: ` : ''}${issue.message}`);
        }
      }
      continue;
    }
    const entry = parsed.data;
    entries.push({
      prefix,
      registry: entry.registry,
      ...(entry.kind !== undefined && { kind: entry.kind }),
      ...(entry.upstreamPrefix !== undefined && { upstreamPrefix: entry.upstreamPrefix }),
      ...(entry.freshness !== undefined && { freshnessMs: entry.freshness }),
      ...(entry.concurrency !== undefined && { concurrency: entry.concurrency }),
      ...(entry.username !== undefined && entry.accessToken !== undefined && { credential: { username: entry.username, accessToken: entry.accessToken } }),
    });
  }
  if (problems.length > 0) throw new ApplyFileError(`invalid apply file ${name}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return entries;
}

export interface ParseOptions {
  /** Where SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the default keys.txt are looked up. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads an apply file: the `registries` format of cistern.yaml, plain or SOPS-encrypted with age (decrypted
 * with the identities SOPS would use, its MAC verified).
 */
export async function parseApplyFile(text: string, name: string, options: ParseOptions = {}): Promise<DesiredState> {
  let tree = parseYamlTree(text, name);
  const encrypted = isSopsDocument(tree);
  if (encrypted) {
    try {
      tree = await decryptSopsDocument(tree, await loadAgeIdentities(options.env ?? process.env));
    } catch (err) {
      if (err instanceof Error) err.message = `${name}: ${err.message}`;
      throw err;
    }
  } else if (containsSopsValue(tree)) {
    throw new ApplyFileError(`${name} holds SOPS-encrypted values (ENC[...]) but no sops metadata: was the sops section removed?`);
  }
  return { entries: desiredFromTree(tree, name), encrypted };
}

export async function loadApplyFile(path: string, options: ParseOptions = {}): Promise<DesiredState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ApplyFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseApplyFile(text, path, options);
}
