/**
 * Pure evaluator for ECR lifecycle policies.
 *
 * Semantics follow the Amazon ECR User Guide, "Lifecycle policy evaluation rules" and the worked examples
 * in "Examples of lifecycle policies":
 *
 *  - "All rules are evaluated at the same time, regardless of rule priority. After all rules are evaluated,
 *    they are then applied based on rule priority." Each rule's selection, and for imageCountMoreThan the
 *    newest-N cut, is computed over the whole repository.
 *  - "An image is expired by exactly one or zero rules."
 *  - "An image that matches the tagging requirements of a rule cannot be expired by a rule with a lower
 *    priority." A rule *claims* every image it selects, including the ones it keeps (e.g. the newest N of
 *    imageCountMoreThan, or images younger than the sinceImagePushed limit).
 *  - "Rules can never mark images that are marked by higher priority rules, but can still identify them as
 *    if they haven't been expired." Claimed images still count towards a later rule's imageCountMoreThan
 *    total; they just cannot be expired by it. (Example A under "Filtering on multiple rules": rule 2 sees
 *    images A, B and C, would mark A and B, but both were seen by rule 1, so only A, from rule 1, expires.)
 *  - "Expiration is always ordered by pushed_at_time, and always expires older images before newer ones."
 *  - tagPrefixList: "an image is successfully matched if all of the tags in the tagPrefixList value are
 *    matched against any of the image's tags" — every prefix must be matched by some tag (not necessarily
 *    the same tag). tagPatternList is treated the same way ("If you specify multiple tags, only the images
 *    with all specified tags are selected"); `*` matches any run of characters (including none), every
 *    other character matches itself, case-sensitively, and the whole tag must match.
 *  - imageCountMoreThan: "images are sorted from youngest to oldest based on pushed_at_time and then all
 *    images greater than the specified count are expired."
 *  - sinceImagePushed: images whose push time is more than countNumber days before `now` (strictly older;
 *    an image exactly N days old is kept). sinceImagePulled: the same against the last pull time, using the
 *    push time for images never pulled (and never a time earlier than the push).
 *
 * Determinism: images are totally ordered oldest-first by (pushedAt, digest); on equal push times the
 * lexicographically smaller digest counts as older. Decisions are returned in that order.
 *
 * Complexity: one O(n log n) sort plus O(n · rules · tags · listEntries) matching; no per-pair work.
 */
import type { LifecyclePolicy, LifecycleRule } from './lifecycle-policy.ts';

export interface ImageInfo {
  readonly digest: string;
  readonly tags: readonly string[];
  readonly pushedAt: Date;
  readonly lastPulledAt?: Date | undefined;
  readonly sizeBytes?: number | undefined;
}

export interface Decision {
  readonly digest: string;
  readonly tags: string[];
  readonly appliedRulePriority: number;
  readonly action: 'EXPIRE';
}

const DAY_MS = 86_400_000;

export function evaluateLifecycle(policy: LifecyclePolicy, images: readonly ImageInfo[], now: Date): Decision[] {
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw new RangeError('evaluateLifecycle: now is an invalid Date');
  const n = images.length;
  if (n === 0) return [];

  const pushed = new Float64Array(n);
  const lastUsed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const image = images[i]!;
    const pushedMs = image.pushedAt.getTime();
    if (!Number.isFinite(pushedMs)) throw new RangeError(`evaluateLifecycle: image ${image.digest} has an invalid pushedAt`);
    pushed[i] = pushedMs;
    let pulledMs = pushedMs;
    if (image.lastPulledAt !== undefined) {
      const ms = image.lastPulledAt.getTime();
      if (!Number.isFinite(ms)) throw new RangeError(`evaluateLifecycle: image ${image.digest} has an invalid lastPulledAt`);
      if (ms > pulledMs) pulledMs = ms;
    }
    lastUsed[i] = pulledMs;
  }

  // Oldest first by push time, ties broken by digest (code-unit order, locale-independent).
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const byTime = pushed[a]! - pushed[b]!;
    if (byTime !== 0) return byTime;
    const da = images[a]!.digest;
    const db = images[b]!.digest;
    return da < db ? -1 : da > db ? 1 : a - b;
  });

  const rules = [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority);
  const claimed = new Uint8Array(n);
  // Index into `rules` of the rule that expires the image, plus one; 0 = not expired.
  const expiredBy = new Int32Array(n);

  rules.forEach((rule, ruleIndex) => {
    const selects = selector(rule);
    const { selection } = rule;
    const mark = ruleIndex + 1;
    if (selection.countType === 'imageCountMoreThan') {
      // Walk newest to oldest; the first countNumber selected images are kept, the rest are candidates.
      let seen = 0;
      for (let k = n - 1; k >= 0; k--) {
        const i = order[k]!;
        if (!selects(images[i]!.tags)) continue;
        seen += 1;
        if (claimed[i]) continue;
        claimed[i] = 1;
        if (seen > selection.countNumber) expiredBy[i] = mark;
      }
    } else {
      const cutoff = nowMs - selection.countNumber * DAY_MS;
      const times = selection.countType === 'sinceImagePushed' ? pushed : lastUsed;
      for (let i = 0; i < n; i++) {
        if (claimed[i] || !selects(images[i]!.tags)) continue;
        claimed[i] = 1;
        if (times[i]! < cutoff) expiredBy[i] = mark;
      }
    }
  });

  const decisions: Decision[] = [];
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const mark = expiredBy[i]!;
    if (mark === 0) continue;
    const image = images[i]!;
    decisions.push({
      digest: image.digest,
      tags: [...image.tags],
      appliedRulePriority: rules[mark - 1]!.rulePriority,
      action: 'EXPIRE',
    });
  }
  return decisions;
}

/** Whether an image (by its tag list) is selected by a rule's tag filter. */
function selector(rule: LifecycleRule): (tags: readonly string[]) => boolean {
  const { selection } = rule;
  switch (selection.tagStatus) {
    case 'any':
      return () => true;
    case 'untagged':
      return (tags) => tags.length === 0;
    case 'tagged': {
      const matchers: ((tag: string) => boolean)[] =
        selection.tagPrefixList !== undefined
          ? selection.tagPrefixList.map((prefix) => (tag: string) => tag.startsWith(prefix))
          : selection.tagPatternList.map(compileTagPattern);
      return (tags) => {
        if (tags.length === 0) return false;
        for (const matches of matchers) {
          let found = false;
          for (const tag of tags) {
            if (matches(tag)) {
              found = true;
              break;
            }
          }
          if (!found) return false;
        }
        return true;
      };
    }
  }
}

/**
 * Compile an ECR tag pattern (`*` = any run of characters, possibly empty; everything else literal) into a
 * whole-string matcher. Runs in linear time: with only `*` wildcards, matching the first segment as a
 * prefix, the last as a suffix and each middle segment at its leftmost occurrence is exact.
 */
export function compileTagPattern(pattern: string): (tag: string) => boolean {
  const segments = pattern.split('*');
  if (segments.length === 1) return (tag) => tag === pattern;
  const head = segments[0]!;
  const tail = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((segment) => segment.length > 0);
  const fixed = head.length + tail.length;
  return (tag) => {
    if (tag.length < fixed || !tag.startsWith(head) || !tag.endsWith(tail)) return false;
    let position = head.length;
    const end = tag.length - tail.length;
    for (const segment of middle) {
      const at = tag.indexOf(segment, position);
      if (at < 0 || at + segment.length > end) return false;
      position = at + segment.length;
    }
    return true;
  };
}
