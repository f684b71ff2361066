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

const NAMES_REMEMBERED = 10_000;

/**
 * Whether an unprefixed name is a local repository, remembered for a short while: with Docker's mirror
 * every pull asks, and with a database across the network each asking would cost a round trip. Writes
 * through this instance forget the name at once (`forget`); other writers' changes arrive as the store's
 * change notices (`forget()` with no name).
 */
export class LocalRepositoryNames {
  private readonly known = new Map<string, { exists: boolean; until: number }>();

  constructor(
    private readonly lookup: (name: string) => Promise<boolean>,
    private readonly ttlMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  async exists(name: string): Promise<boolean> {
    const hit = this.known.get(name);
    if (hit && hit.until > this.now()) return hit.exists;
    const exists = await this.lookup(name);
    if (this.known.size >= NAMES_REMEMBERED) this.known.clear();
    this.known.set(name, { exists, until: this.now() + this.ttlMs });
    return exists;
  }

  forget(name?: string): void {
    if (name === undefined) this.known.clear();
    else this.known.delete(name);
  }
}
