import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.ts';
import type { Digest } from '../domain/digest.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../domain/manifest.ts';
import type { Reference, RepositoryName } from '../domain/reference.ts';
import type { Metrics } from '../metrics.ts';
import type { LocalRegistry } from '../registry/local-registry.ts';
import type { BlobRead, BlobReadOptions, ImportGuard, PullOptions, Registry, StoredManifest, UploadStatus } from '../registry/registry.ts';
import type { BlobInfo, BlobStore } from '../storage/blob-store.ts';
import type { MetadataStore, PageRequest, TagState } from '../storage/metadata-store.ts';
import type { UpstreamClient } from '../upstream/client.ts';
import { UpstreamFailure } from '../upstream/failure.ts';
import type { QuotaTracker } from '../upstream/quota.ts';
import { PRESETS } from '../upstream/presets.ts';
import { ByteLru } from '../registry/byte-lru.ts';
import type { BlobFills } from './blob-fill.ts';
import type { RuleMatch, RuleSet } from './rules.ts';
import type { TemplateResolver } from './templates.ts';

const TAG_STATE_MEMORY = 16 * 1024 * 1024;

export interface PullThroughOptions {
  local: LocalRegistry;
  blobs: BlobStore;
  metadata: MetadataStore;
  rules: () => RuleSet;
  upstream: (prefix: string) => UpstreamClient;
  fills: BlobFills;
  templates: TemplateResolver;
  quota: QuotaTracker;
  quotaReserve: number;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
}

/**
 * The pull-through cache: the Registry interface around the local registry. Repositories under a cache
 * rule are filled from their upstream on first pull and served locally after; everything else passes
 * straight through. Upstream requests are deduplicated (one per manifest and per blob however many
 * clients ask at once), tags are revalidated with a HEAD once their freshness window has passed, and
 * whatever the upstream does wrong, what is cached keeps being served.
 */
export class PullThroughRegistry implements Registry {
  private readonly local: LocalRegistry;
  private readonly now: () => Date;
  /** Tag states of cached repositories, so a fresh tag costs no database read; bounded like the manifest cache. */
  private readonly tagStates = new ByteLru<TagState>(TAG_STATE_MEMORY);
  private readonly manifestFlights = new Map<string, Promise<StoredManifest>>();
  /** Fills whose blob is not yet linked to the repository that asked (a client may finish reading first). */
  private readonly pendingLinks = new Set<Promise<void>>();

  constructor(private readonly options: PullThroughOptions) {
    this.local = options.local;
    this.now = options.now ?? (() => new Date());
  }

  /** Waits until every fill under way has committed and been linked (shutdown, and tests). */
  async settle(): Promise<void> {
    await this.options.fills.drain();
    await Promise.all([...this.pendingLinks]);
  }

  /** Drops the tag states held in memory (the store was changed by someone else): of `repository`, or all. */
  forgetCached(repository?: string): void {
    if (repository === undefined) this.tagStates.clear();
    else this.tagStates.deleteWhere((key) => key.startsWith(`${repository}:`));
  }

  private remember(key: string, state: TagState): void {
    this.tagStates.set(key, state, key.length + state.digest.length + 64);
  }

  private match(repository: string): RuleMatch | undefined {
    return this.options.rules().match(repository);
  }

  catalog(page: PageRequest): Promise<string[]> {
    return this.local.catalog(page);
  }

  async getManifest(repository: RepositoryName, reference: Reference, options: PullOptions = {}): Promise<StoredManifest> {
    const match = this.match(repository);
    if (!match) return this.local.getManifest(repository, reference, options);
    const rule = match.rule.prefix;
    if (reference.kind === 'digest') {
      try {
        const manifest = await this.local.getManifest(repository, reference, options);
        this.options.metrics.cacheLookups.inc({ rule, kind: 'manifest', result: 'hit' });
        return manifest;
      } catch (err) {
        if (!(err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN')) throw err;
      }
      this.options.metrics.cacheLookups.inc({ rule, kind: 'manifest', result: 'miss' });
      // Digests never change, so a cached one never needs revalidation; a cold one is fetched.
      await this.guard(repository, options.guard);
      const key = `${repository}@${reference.digest}`;
      return this.once(key, () =>
        this.acrossFleet(key, () => this.storedByDigest(repository, reference.digest), () => this.fetchManifest(match, repository, reference.digest)),
      );
    }
    const key = `${repository}:${reference.tag}`;
    let state = this.tagStates.get(key);
    if (!state) {
      state = await this.local.tagState(repository, reference.tag);
      if (state) this.remember(key, state);
    }
    if (state && this.now().getTime() - state.checkedAt.getTime() < match.rule.freshnessMs) {
      this.options.metrics.cacheLookups.inc({ rule, kind: 'manifest', result: 'hit' });
      return this.local.getManifest(repository, { kind: 'digest', digest: state.digest }, options);
    }
    const known = state;
    if (!known) await this.guard(repository, options.guard);
    // A caller who may not import still revalidates (a HEAD spends no quota) but is served what is cached.
    const mayImport = known ? await this.guard(repository, options.guard).then(() => true, () => false) : true;
    const manifest = await this.once(`${key}${mayImport ? '' : '#cached-only'}`, () =>
      this.acrossFleet(
        key,
        () => this.checkedSince(match, repository, reference.tag, known),
        () => (known ? this.revalidate(match, repository, reference.tag, known, mayImport) : this.fetchTag(match, repository, reference.tag)),
      ),
    );
    // Shared by everyone who waited on the flight; each of them pulled.
    if (options.pull !== false) this.local.recordPull(repository, manifest.digest);
    return manifest;
  }

  /**
   * Upstream work on `key` happens once per fleet, not once per instance: instances sharing the store take
   * turns, and whoever comes second finds what the first stored and asks upstream nothing.
   */
  private acrossFleet(key: string, stored: () => Promise<StoredManifest | undefined>, work: () => Promise<StoredManifest>): Promise<StoredManifest> {
    return this.options.metadata.locks.with(`upstream-manifest:${key}`, async () => (await stored()) ?? work());
  }

  private async storedByDigest(repository: RepositoryName, digest: Digest): Promise<StoredManifest | undefined> {
    try {
      return await this.local.getManifest(repository, { kind: 'digest', digest }, { pull: false });
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') return undefined;
      throw err;
    }
  }

  /** The tag as stored, if it was fetched or revalidated since `known` (by another instance) and is fresh. */
  private async checkedSince(match: RuleMatch, repository: RepositoryName, tag: string, known: TagState | undefined): Promise<StoredManifest | undefined> {
    const state = await this.local.tagState(repository, tag);
    if (!state || (known && state.checkedAt <= known.checkedAt)) return undefined;
    if (this.now().getTime() - state.checkedAt.getTime() >= match.rule.freshnessMs) return undefined;
    this.remember(`${repository}:${tag}`, state);
    this.options.metrics.cacheLookups.inc({ rule: match.rule.prefix, kind: 'manifest', result: 'hit' });
    return this.local.getManifest(repository, { kind: 'digest', digest: state.digest }, { pull: false });
  }

  private async fetchTag(match: RuleMatch, repository: RepositoryName, tag: string): Promise<StoredManifest> {
    this.options.metrics.cacheLookups.inc({ rule: match.rule.prefix, kind: 'manifest', result: 'miss' });
    return this.fetchManifest(match, repository, tag, tag);
  }

  /** A cached tag past its freshness window: HEAD upstream, and GET only if the digest moved. */
  private async revalidate(match: RuleMatch, repository: RepositoryName, tag: string, state: TagState, mayImport: boolean): Promise<StoredManifest> {
    const { rule, upstreamRepository } = match;
    const upstream = this.options.upstream(rule.prefix);
    const stale = async (reason: string, err?: unknown) => {
      this.options.metrics.staleServes.inc({ rule: rule.prefix, reason });
      this.options.log.warn({ rule: rule.prefix, repository, tag, reason, ...(err instanceof RegistryError && { cause: err.message }) }, 'serving cached manifest without revalidation');
      return this.local.getManifest(repository, { kind: 'digest', digest: state.digest }, { pull: false });
    };
    let head;
    try {
      head = await upstream.headManifest(upstreamRepository, tag);
    } catch (err) {
      if (err instanceof UpstreamFailure) return stale(err.fault, err);
      throw err;
    }
    if (!head || head.digest === state.digest) {
      // Unchanged, or deleted upstream (which must not take it away from the people relying on it here).
      await this.markChecked(repository, tag, state.digest);
      this.options.metrics.cacheLookups.inc({ rule: rule.prefix, kind: 'manifest', result: 'revalidated' });
      return this.local.getManifest(repository, { kind: 'digest', digest: state.digest }, { pull: false });
    }
    if (!mayImport) return stale('not-permitted-to-import');
    if (PRESETS[rule.kind]?.countsPulls && this.options.quota.isLow(await upstream.identity(), this.options.quotaReserve)) {
      return stale('quota-reserve');
    }
    try {
      return await this.fetchManifest(match, repository, tag, tag);
    } catch (err) {
      if (err instanceof UpstreamFailure) return stale(err.fault, err);
      throw err;
    }
  }

  private async fetchManifest(match: RuleMatch, repository: RepositoryName, reference: string, tag?: string): Promise<StoredManifest> {
    const fetched = await this.options.upstream(match.rule.prefix).getManifest(match.upstreamRepository, reference);
    if (!tag && fetched.digest !== reference) {
      throw new UpstreamFailure(match.rule.prefix, 'corrupt', `manifest bytes do not match ${reference}; discarded`);
    }
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(fetched.body, fetched.mediaType || undefined);
    } catch (err) {
      // Upstream's fault, not the client's: an UpstreamFailure, so a cached tag is served stale instead.
      if (!(err instanceof RegistryError)) throw err;
      const { reason } = (err.detail ?? {}) as { reason?: unknown };
      throw new UpstreamFailure(match.rule.prefix, 'protocol', `sent a manifest Cistern cannot use (${typeof reason === 'string' ? reason : err.message}); discarded`);
    }
    await this.ensureRepository(match, repository);
    const stored = await this.local.cacheManifest(repository, fetched.digest, fetched.body, parsed, tag);
    if (tag) this.remember(`${repository}:${tag}`, { digest: fetched.digest, checkedAt: this.now() });
    return stored;
  }

  private async markChecked(repository: string, tag: string, digest: Digest): Promise<void> {
    const at = this.now();
    this.remember(`${repository}:${tag}`, { digest, checkedAt: at });
    await this.options.metadata.tags.markChecked(repository, tag, at);
  }

  /** First pull of a repository: create it from the matching creation template. */
  private async ensureRepository(match: RuleMatch, repository: string): Promise<void> {
    const settings = await this.options.templates.settingsFor(repository);
    const created = await this.options.metadata.repositories.create(
      repository,
      { cacheRule: match.rule.prefix, ...(settings && { settings }) },
      this.now(),
    );
    if (created) this.options.log.info({ repository, rule: match.rule.prefix, template: settings?.template }, 'created repository on first pull');
  }

  /** Lets the caller's guard refuse an import (creating the repository, if it does not exist yet). */
  private async guard(repository: string, guard: ImportGuard | undefined): Promise<void> {
    if (!guard) return;
    await guard(!(await this.options.metadata.repositories.get(repository)));
  }

  private once(key: string, work: () => Promise<StoredManifest>): Promise<StoredManifest> {
    let flight = this.manifestFlights.get(key);
    if (!flight) {
      flight = work().finally(() => this.manifestFlights.delete(key));
      this.manifestFlights.set(key, flight);
    }
    return flight;
  }

  async statBlob(repository: RepositoryName, digest: Digest, options: { guard?: ImportGuard } = {}): Promise<BlobInfo> {
    const match = this.match(repository);
    if (!match) return this.local.statBlob(repository, digest);
    const local = await this.localBlob(repository, digest);
    if (local) return local;
    await this.guard(repository, options.guard);
    const size = await this.options.upstream(match.rule.prefix).headBlob(match.upstreamRepository, digest);
    if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    return { digest, size };
  }

  async readBlob(repository: RepositoryName, digest: Digest, options: BlobReadOptions = {}): Promise<BlobRead> {
    const match = this.match(repository);
    if (!match) return this.local.readBlob(repository, digest, options);
    const rule = match.rule.prefix;
    const cached = await this.localBlob(repository, digest);
    if (cached) {
      this.options.metrics.cacheLookups.inc({ rule, kind: 'blob', result: 'hit' });
      return this.local.openBlob(cached, options);
    }
    this.options.metrics.cacheLookups.inc({ rule, kind: 'blob', result: 'miss' });
    await this.guard(repository, options.guard);
    const upstream = this.options.upstream(rule);
    const { guard: _guard, ...readOptions } = options;
    const read = await this.options.fills.read(digest, (start, signal) => upstream.getBlob(match.upstreamRepository, digest, start, signal), { ...readOptions, rule });
    const linked = read.fill
      .then(
        async (blob) => {
          await this.ensureRepository(match, repository);
          await this.local.linkBlob(repository, digest, blob.size);
        },
        (err: unknown) => this.options.log.warn({ rule, repository, digest, err: err instanceof RegistryError ? err.message : err }, 'blob fill failed'),
      )
      .catch((err: unknown) => this.options.log.error({ err }, 'linking a filled blob failed'))
      .finally(() => this.pendingLinks.delete(linked));
    this.pendingLinks.add(linked);
    return read;
  }

  /**
   * A blob this repository may read without asking upstream: linked already, or in the store and named
   * by one of this repository's cached manifests (the upstream vouched for it). A blob held only by some
   * other repository is never handed out on a digest alone.
   */
  private async localBlob(repository: RepositoryName, digest: Digest): Promise<BlobInfo | undefined> {
    try {
      return await this.local.statBlob(repository, digest);
    } catch (err) {
      if (!(err instanceof RegistryError && err.code === 'BLOB_UNKNOWN')) throw err;
    }
    const stored = await this.options.blobs.stat(digest);
    if (!stored || !(await this.options.metadata.manifests.referencesBlob(repository, digest))) return undefined;
    return (await this.local.linkBlob(repository, digest, stored.size)) ? stored : undefined;
  }

  deleteBlob(repository: RepositoryName, digest: Digest): Promise<void> {
    return this.local.deleteBlob(repository, digest);
  }

  deleteManifest(repository: RepositoryName, reference: Reference): Promise<void> {
    if (reference.kind === 'tag') this.tagStates.delete(`${repository}:${reference.tag}`);
    else this.tagStates.clear();
    return this.local.deleteManifest(repository, reference);
  }

  listTags(repository: RepositoryName, page: PageRequest): Promise<string[]> {
    return this.local.listTags(repository, page);
  }

  referrers(repository: RepositoryName, subject: Digest): Promise<Descriptor[]> {
    return this.local.referrers(repository, subject);
  }

  // Writes: a cached repository mirrors its upstream, so nothing may be pushed into it.

  async putManifest(repository: RepositoryName, reference: Reference, body: Buffer, contentType: string | undefined) {
    this.refusePush(repository);
    return this.local.putManifest(repository, reference, body, contentType);
  }

  async startUpload(repository: RepositoryName): Promise<UploadStatus> {
    this.refusePush(repository);
    return this.local.startUpload(repository);
  }

  async uploadStatus(repository: RepositoryName, id: string): Promise<UploadStatus> {
    return this.local.uploadStatus(repository, id);
  }

  async appendUpload(...args: Parameters<Registry['appendUpload']>): Promise<UploadStatus> {
    this.refusePush(args[0]);
    return this.local.appendUpload(...args);
  }

  async finishUpload(...args: Parameters<Registry['finishUpload']>): Promise<BlobInfo> {
    this.refusePush(args[0]);
    return this.local.finishUpload(...args);
  }

  cancelUpload(repository: RepositoryName, id: string): Promise<void> {
    return this.local.cancelUpload(repository, id);
  }

  async mountBlob(repository: RepositoryName, digest: Digest, from: RepositoryName): Promise<BlobInfo | undefined> {
    this.refusePush(repository);
    return this.local.mountBlob(repository, digest, from);
  }

  private refusePush(repository: string): void {
    const match = this.match(repository);
    if (match) {
      throw new RegistryError(
        'DENIED',
        `requested access to the resource is denied: ${repository} is a pull-through cache of ${match.rule.upstreamUrl} (rule "${match.rule.prefix}"); push to a repository outside that prefix`,
      );
    }
  }
}
