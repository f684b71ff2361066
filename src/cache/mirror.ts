import { RegistryError } from '../domain/errors.ts';
import type { RuleSet } from './rules.ts';

/**
 * Mirror mode: containerd sends `?ns=<registry host>` when Cistern mirrors another registry, and Docker
 * Engine's `registry-mirrors` sends Docker Hub names with no prefix at all. Either way the request is
 * served under the matching rule's prefix, so clients never rewrite an image name.
 */
export function mirroredName(name: string, ns: string | null, rules: RuleSet, defaultMirror: string | undefined, localExists: () => Promise<boolean>): Promise<string> | string {
  if (ns !== null) {
    const rule = rules.forHost(ns);
    if (!rule) {
      throw new RegistryError('NAME_UNKNOWN', `no cache rule serves registry ${ns.slice(0, 100)}`, { ns: ns.slice(0, 100) });
    }
    return `${rule.prefix}/${name}`;
  }
  if (!defaultMirror || rules.match(name)) return name;
  return localExists().then((exists) => (exists ? name : `${defaultMirror}/${name}`));
}
