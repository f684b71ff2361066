import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates a config object; every problem is reported with its path. */
export function parseConfig(input: unknown): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `  ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  }
  return result.data;
}

/**
 * Reads a YAML config file. `${NAME}` anywhere in a value is replaced by the environment variable NAME
 * (an unset variable is an error, so a typo cannot silently become an empty credential).
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return parseConfig(substituteEnv(document, env));
}

function substituteEnv(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const found = env[name];
      if (found === undefined) throw new ConfigError(`config refers to environment variable ${name}, which is not set`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item) => substituteEnv(item, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substituteEnv(item, env)]));
  }
  return value;
}

/**
 * The config as it may be shown (config-check, support requests): upstream access tokens and the
 * database password are replaced, since they often arrive from the environment and end up in CI logs.
 */
export function redactedConfig(config: Config): Config {
  const hidden = '(hidden)';
  const registries = Object.fromEntries(
    Object.entries(config.registries).map(([prefix, entry]) => [prefix, entry.accessToken === undefined ? entry : { ...entry, accessToken: hidden }]),
  );
  const metadata = config.storage.metadata;
  let shownMetadata = metadata;
  if (metadata.driver === 'postgres') {
    let url = hidden;
    try {
      const parsed = new URL(metadata.url);
      if (parsed.password) parsed.password = hidden;
      for (const name of ['password', 'sslpassword']) if (parsed.searchParams.has(name)) parsed.searchParams.set(name, hidden);
      url = parsed.toString();
    } catch {
      // An unparsable URL is shown not at all rather than in full.
    }
    shownMetadata = { ...metadata, url };
  }
  return { ...config, registries, storage: { ...config.storage, metadata: shownMetadata } };
}

export type { Config, ConfigInput };
