import type { Digest } from '../domain/digest.ts';
import type { RepositoryName } from '../domain/reference.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { Registry } from './registry.ts';

/**
 * Deletes images (top-level manifests, with their tags) and then the platform manifests of deleted
 * indexes that no remaining index or tag holds: an index and its platform manifests go together.
 * Deletion goes through the composed registry, so caches above the store forget them too.
 */
export async function deleteImages(registry: Registry, metadata: MetadataStore, repository: string, digests: Digest[]): Promise<void> {
  const name = repository as RepositoryName;
  const before = new Map((await metadata.manifests.list(repository)).map((m) => [m.digest as string, m]));
  const orphans = new Set<string>();
  for (const digest of digests) {
    await registry.deleteManifest(name, { kind: 'digest', digest }).catch(() => {});
    for (const child of before.get(digest)?.children ?? []) orphans.add(child);
  }
  if (orphans.size === 0) return;
  for (const manifest of await metadata.manifests.list(repository)) {
    if (orphans.has(manifest.digest) && !manifest.inIndex && manifest.tags.length === 0) {
      await registry.deleteManifest(name, { kind: 'digest', digest: manifest.digest }).catch(() => {});
    }
  }
}
