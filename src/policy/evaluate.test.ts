import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileTagPattern, evaluateLifecycle, type Decision, type ImageInfo } from './evaluate.ts';
import { parseLifecyclePolicy, type LifecyclePolicy } from './lifecycle-policy.ts';

const DAY = 86_400_000;
const NOW = new Date('2025-06-01T12:00:00.000Z');

function daysAgo(days: number): Date {
  return new Date(NOW.getTime() - days * DAY);
}

function image(digest: string, tags: string[], pushedDaysAgo: number, pulledDaysAgo?: number): ImageInfo {
  return {
    digest,
    tags,
    pushedAt: daysAgo(pushedDaysAgo),
    ...(pulledDaysAgo === undefined ? {} : { lastPulledAt: daysAgo(pulledDaysAgo) }),
  };
}

type RuleSpec = { priority: number; selection: Record<string, unknown> };

/** Build a policy through the real parser, so every policy used here is one ECR would accept. */
function policy(...rules: RuleSpec[]): LifecyclePolicy {
  return parseLifecyclePolicy(
    JSON.stringify({
      rules: rules.map(({ priority, selection }) => ({
        rulePriority: priority,
        description: `rule ${priority}`,
        selection,
        action: { type: 'expire' },
      })),
    }),
  );
}

/** Expired digests with the priority of the rule that expired them, in decision order. */
function expired(decisions: Decision[]): [string, number][] {
  return decisions.map((decision) => [decision.digest, decision.appliedRulePriority]);
}

function run(p: LifecyclePolicy, images: ImageInfo[]): [string, number][] {
  return expired(evaluateLifecycle(p, images, NOW));
}

describe('evaluateLifecycle: documented ECR examples', () => {
  it('"Filtering on image age": expires untagged images older than 14 days', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
    });
    const images = [
      image('sha256:old-untagged', [], 20),
      image('sha256:new-untagged', [], 3),
      image('sha256:old-tagged', ['v1'], 30),
    ];
    assert.deepEqual(run(p, images), [['sha256:old-untagged', 1]]);
  });

  it('"Filtering on image age" (tag pattern version): expires prod* images older than 14 days', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPatternList: ['prod*'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
    });
    const images = [
      image('sha256:a', ['prod'], 15),
      image('sha256:b', ['prod-2'], 13),
      image('sha256:c', ['preprod'], 40),
      image('sha256:d', [], 40),
    ];
    assert.deepEqual(run(p, images), [['sha256:a', 1]]);
  });

  it('"Filtering on image count": keeps only one untagged image', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 } });
    const images = [
      image('sha256:u1', [], 3),
      image('sha256:u2', [], 2),
      image('sha256:u3', [], 1),
      image('sha256:t', ['latest'], 10),
    ];
    assert.deepEqual(run(p, images), [
      ['sha256:u1', 1],
      ['sha256:u2', 1],
    ]);
  });

  const multipleRulesRepository = [
    image('A', ['beta-1', 'prod-1'], 10),
    image('B', ['beta-2', 'prod-2'], 9),
    image('C', ['beta-3'], 8),
  ];

  it('"Filtering on multiple rules", example A: an image kept by rule 1 is not expired by rule 2', () => {
    for (const [prod, beta] of [
      [{ tagPrefixList: ['prod'] }, { tagPrefixList: ['beta'] }],
      [{ tagPatternList: ['prod*'] }, { tagPatternList: ['beta*'] }],
    ]) {
      const p = policy(
        { priority: 1, selection: { tagStatus: 'tagged', ...prod, countType: 'imageCountMoreThan', countNumber: 1 } },
        { priority: 2, selection: { tagStatus: 'tagged', ...beta, countType: 'imageCountMoreThan', countNumber: 1 } },
      );
      // Rule 1 marks A. Rule 2 would mark A and B, but A was already seen by rule 1, and expiring B would
      // violate rule 1 (which keeps it), so it is skipped. Result: A is expired.
      assert.deepEqual(run(p, multipleRulesRepository), [['A', 1]]);
    }
  });

  it('"Filtering on multiple rules", example B: rule order swapped', () => {
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPatternList: ['beta*'], countType: 'imageCountMoreThan', countNumber: 1 } },
      { priority: 2, selection: { tagStatus: 'tagged', tagPatternList: ['prod*'], countType: 'imageCountMoreThan', countNumber: 1 } },
    );
    // Rule 1 sees all three images and marks A and B; rule 2 sees only images rule 1 already saw.
    assert.deepEqual(run(p, multipleRulesRepository), [
      ['A', 1],
      ['B', 1],
    ]);
  });

  it('"Filtering on multiple tags in a single rule", example A: every prefix must be matched', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPrefixList: ['alpha', 'beta'], countType: 'sinceImagePushed', countNumber: 5, countUnit: 'days' },
    });
    const images = [
      image('A', ['alpha-1'], 12),
      image('B', ['beta-1'], 11),
      image('C', ['alpha-2', 'beta-2'], 10),
      image('D', ['alpha-3'], 4),
      image('E', ['beta-3'], 3),
      image('F', ['alpha-4', 'beta-4'], 2),
    ];
    // The rule sees C and F; only C is older than five days.
    assert.deepEqual(run(p, images), [['C', 1]]);
  });

  it('"Filtering on multiple tags in a single rule", example B: tags are not exclusive', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPrefixList: ['alpha', 'beta'], countType: 'imageCountMoreThan', countNumber: 1 },
    });
    const images = [
      image('A', ['alpha-1', 'beta-1', 'gamma-1'], 10),
      image('B', ['alpha-2', 'beta-2'], 9),
      image('C', ['alpha-3', 'beta-3', 'gamma-2'], 8),
    ];
    assert.deepEqual(run(p, images), [
      ['A', 1],
      ['B', 1],
    ]);
  });

  it('the same multi-tag examples hold for tagPatternList', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPatternList: ['alpha*', 'beta*'], countType: 'sinceImagePushed', countNumber: 5, countUnit: 'days' },
    });
    const images = [
      image('A', ['alpha-1'], 12),
      image('B', ['beta-1'], 11),
      image('C', ['alpha-2', 'beta-2'], 10),
      image('F', ['alpha-4', 'beta-4'], 2),
    ];
    assert.deepEqual(run(p, images), [['C', 1]]);
  });

  it('"Filtering on all images": a tagged rule plus a final any rule', () => {
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPatternList: ['alpha*'], countType: 'imageCountMoreThan', countNumber: 1 } },
      { priority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } },
    );
    const images = [
      image('A', ['alpha-1'], 4),
      image('B', [], 3),
      image('C', ['alpha-2'], 2),
      image('D', ['git-hash'], 1),
    ];
    // Rule 1 keeps C and expires A. Rule 2 sees A, B, C, D, keeps D and would expire A, B, C; A is already
    // expired and C was matched by rule 1, so only B is added.
    assert.deepEqual(run(p, images), [
      ['A', 1],
      ['B', 2],
    ]);
  });

  it('a lone any rule keeps only the newest N images regardless of tags', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } });
    const images = [image('A', ['alpha-1'], 4), image('B', [], 3), image('C', ['alpha-2'], 2), image('D', ['git-hash'], 1)];
    assert.deepEqual(run(p, images), [
      ['A', 1],
      ['B', 1],
      ['C', 1],
    ]);
  });
});

describe('evaluateLifecycle: priorities and claims', () => {
  it('an image matched by two rules is decided by the higher-priority (lower number) rule only', () => {
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPatternList: ['prod*'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 } },
      { priority: 2, selection: { tagStatus: 'tagged', tagPatternList: ['*'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 } },
    );
    const images = [
      image('prod-old', ['prod-1', 'x'], 40), // rule 1 expires it
      image('prod-mid', ['prod-2', 'x'], 10), // rule 1 keeps it; rule 2 would expire it but may not
      image('dev-mid', ['dev-1'], 10), // only rule 2 selects it
      image('dev-new', ['dev-2'], 1),
    ];
    assert.deepEqual(run(p, images), [
      ['prod-old', 1],
      ['dev-mid', 2],
    ]);
  });

  it('images kept by imageCountMoreThan are claimed and protected from later rules', () => {
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPrefixList: ['release'], countType: 'imageCountMoreThan', countNumber: 2 } },
      { priority: 2, selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 } },
    );
    const images = [
      image('r1', ['release-1'], 300),
      image('r2', ['release-2'], 200),
      image('r3', ['release-3'], 100),
      image('other', ['feature-x'], 50),
    ];
    // r2 and r3 are the newest two release images: kept forever, even though rule 2 would expire them.
    assert.deepEqual(run(p, images), [
      ['r1', 1],
      ['other', 2],
    ]);
  });

  it('claimed images still count towards a later imageCountMoreThan total', () => {
    // "Rules can never mark images that are marked by higher priority rules, but can still identify them as
    // if they haven't been expired." Rule 2 sees both beta images; B (newest) is the one it keeps, so A is
    // beyond its count even though B itself belongs to rule 1.
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPrefixList: ['prod'], countType: 'imageCountMoreThan', countNumber: 1 } },
      { priority: 2, selection: { tagStatus: 'tagged', tagPrefixList: ['beta'], countType: 'imageCountMoreThan', countNumber: 1 } },
    );
    const images = [image('A', ['beta-1'], 10), image('B', ['beta-2', 'prod-2'], 9)];
    assert.deepEqual(run(p, images), [['A', 2]]);
  });

  it('applies rules by rulePriority, not document order', () => {
    const ruleA = { priority: 20, selection: { tagStatus: 'tagged', tagPrefixList: ['v'], countType: 'imageCountMoreThan', countNumber: 1 } };
    const ruleB = { priority: 10, selection: { tagStatus: 'tagged', tagPrefixList: ['v1'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 100 } };
    const images = [image('old-v1', ['v1.0'], 50), image('older-v1', ['v1.1'], 60), image('v2', ['v2.0'], 1)];
    // Rule 10 claims both v1 images (neither is older than 100 days), so rule 20 can only touch v2 (kept).
    const forward = run(policy(ruleA, ruleB), images);
    const backward = run(policy(ruleB, ruleA), images);
    assert.deepEqual(forward, []);
    assert.deepEqual(backward, []);
  });

  it('untagged and any rules together: the untagged rule owns untagged images', () => {
    const p = policy(
      { priority: 1, selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 } },
      { priority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 2 } },
    );
    const images = [
      image('u-old', [], 30),
      image('u-new', [], 1),
      image('t1', ['a'], 20),
      image('t2', ['b'], 10),
      image('t3', ['c'], 5),
    ];
    // Rule 2's newest two are u-new and t3 (u-new counts although it belongs to rule 1); t1 and t2 expire.
    assert.deepEqual(run(p, images), [
      ['u-old', 1],
      ['t1', 2],
      ['t2', 2],
    ]);
  });
});

describe('evaluateLifecycle: sinceImagePulled', () => {
  const p = policy({
    priority: 1,
    selection: { tagStatus: 'any', countType: 'sinceImagePulled', countUnit: 'days', countNumber: 30 },
  });

  it('uses the last pull time when the image has been pulled', () => {
    const images = [
      image('pulled-recently', ['a'], 100, 2),
      image('pulled-long-ago', ['b'], 100, 45),
    ];
    assert.deepEqual(run(p, images), [['pulled-long-ago', 1]]);
  });

  it('falls back to the push time for images never pulled', () => {
    const images = [image('never-pulled-old', ['a'], 31), image('never-pulled-new', ['b'], 29)];
    assert.deepEqual(run(p, images), [['never-pulled-old', 1]]);
  });

  it('never treats a pull as older than the push', () => {
    const images = [image('odd', ['a'], 5, 90)];
    assert.deepEqual(run(p, images), []);
  });

  it('orders expiry by push time, not pull time', () => {
    const images = [image('pushed-first', ['a'], 100, 40), image('pushed-second', ['b'], 90, 60)];
    assert.deepEqual(run(p, images), [
      ['pushed-first', 1],
      ['pushed-second', 1],
    ]);
  });

  it('sinceImagePushed ignores pulls', () => {
    const pushed = policy({
      priority: 1,
      selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 },
    });
    assert.deepEqual(run(pushed, [image('pulled-yesterday', ['a'], 100, 1)]), [['pulled-yesterday', 1]]);
  });
});

describe('evaluateLifecycle: tag matching', () => {
  function selected(pattern: string[], tags: string[][]): string[] {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPatternList: pattern, countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 },
    });
    const images = tags.map((t, index) => image(`img-${index}:${t.join(',')}`, t, 10 + index));
    return evaluateLifecycle(p, images, NOW)
      .map((decision) => decision.tags.join(','))
      .sort();
  }

  it('prod* matches tags starting with prod', () => {
    assert.deepEqual(selected(['prod*'], [['prod'], ['prod-1'], ['production'], ['preprod'], ['PROD-1'], ['xprod']]), [
      'prod',
      'prod-1',
      'production',
    ]);
  });

  it('*prod matches tags ending with prod', () => {
    assert.deepEqual(selected(['*prod'], [['prod'], ['preprod'], ['prod-1'], ['app-prod'], ['prodx']]), [
      'app-prod',
      'preprod',
      'prod',
    ]);
  });

  it('*-rc* matches tags containing -rc', () => {
    assert.deepEqual(selected(['*-rc*'], [['1.0-rc1'], ['2.0-rc'], ['-rc'], ['1.0rc1'], ['rc-1'], ['1.0-RC1']]), [
      '-rc',
      '1.0-rc1',
      '2.0-rc',
    ]);
  });

  it('a pattern without wildcards matches the exact tag only', () => {
    assert.deepEqual(selected(['latest'], [['latest'], ['latest-1'], ['not-latest']]), ['latest']);
  });

  it('* matches every tagged image but never an untagged one', () => {
    assert.deepEqual(selected(['*'], [['a'], [], ['b', 'c']]), ['a', 'b,c']);
  });

  it('an image with several tags is selected if any of its tags matches', () => {
    assert.deepEqual(selected(['prod*'], [['sha-abc', 'prod-7', 'latest'], ['sha-def', 'dev']]), ['sha-abc,prod-7,latest']);
  });

  it('several patterns must each be matched, possibly by different tags', () => {
    assert.deepEqual(
      selected(['prod*', '*-rc*'], [['prod-1', '2.0-rc1'], ['prod-1'], ['2.0-rc1'], ['prod-1-rc2']]),
      ['prod-1,2.0-rc1', 'prod-1-rc2'],
    );
  });

  it('compileTagPattern handles the documented four-wildcard shapes and overlapping anchors', () => {
    const cases: [string, string, boolean][] = [
      ['*test*1*2*3', 'my-test-1-2-3', true],
      ['*test*1*2*3', 'test123', true],
      ['*test*1*2*3', 'test132', false],
      ['test*1*2*3*', 'test-1-2-3-x', true],
      ['test*1*2*3*', 'tes-1-2-3', false],
      ['a*a', 'a', false],
      ['a*a', 'aa', true],
      ['ab*ba', 'aba', false],
      ['ab*ba', 'abba', true],
      ['a**b', 'ab', true],
      ['*a*b*', 'xbxa', false],
      ['*a*b*', 'xaxb', true],
      ['v1.*', 'v1x2', false],
      ['v1.*', 'v1.2', true],
      ['*', '', true],
    ];
    for (const [pattern, tag, expected] of cases) {
      assert.equal(compileTagPattern(pattern)(tag), expected, `${pattern} vs ${tag}`);
    }
  });

  it('tagPrefixList entries match from the start of a tag', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'tagged', tagPrefixList: ['v1'], countType: 'imageCountMoreThan', countNumber: 1 },
    });
    const images = [image('a', ['v1.0'], 5), image('b', ['xv1'], 4), image('c', ['v1.1'], 3), image('d', ['v10'], 2)];
    assert.deepEqual(run(p, images), [
      ['a', 1],
      ['c', 1],
    ]);
  });
});

describe('evaluateLifecycle: boundaries, determinism and output', () => {
  it('expires only images strictly older than N days', () => {
    const p = policy({
      priority: 1,
      selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
    });
    const images: ImageInfo[] = [
      { digest: 'exactly-14-days', tags: [], pushedAt: new Date(NOW.getTime() - 14 * DAY) },
      { digest: 'just-over', tags: [], pushedAt: new Date(NOW.getTime() - 14 * DAY - 1) },
      { digest: 'future', tags: [], pushedAt: new Date(NOW.getTime() + DAY) },
    ];
    assert.deepEqual(run(p, images), [['just-over', 1]]);
  });

  it('keeps exactly countNumber images and nothing when there are not more than that', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 3 } });
    const images = [image('a', [], 3), image('b', ['x'], 2), image('c', ['y'], 1)];
    assert.deepEqual(run(p, images), []);
    assert.deepEqual(run(p, [...images, image('d', [], 4)]), [['d', 1]]);
  });

  it('breaks push-time ties by digest, with the smaller digest counting as older', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } });
    const at = daysAgo(5);
    const images: ImageInfo[] = ['sha256:cc', 'sha256:aa', 'sha256:bb'].map((digest) => ({ digest, tags: [], pushedAt: at }));
    const expected: [string, number][] = [
      ['sha256:aa', 1],
      ['sha256:bb', 1],
    ];
    assert.deepEqual(run(p, images), expected);
    assert.deepEqual(run(p, [...images].reverse()), expected);
  });

  it('returns oldest-first decisions with copied tags and the EXPIRE action', () => {
    const p = policy({
      priority: 7,
      selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 },
    });
    const tags = ['b', 'a'];
    const images = [image('newer', tags, 2), image('older', ['z'], 9)];
    const decisions = evaluateLifecycle(p, images, NOW);
    assert.deepEqual(decisions, [
      { digest: 'older', tags: ['z'], appliedRulePriority: 7, action: 'EXPIRE' },
      { digest: 'newer', tags: ['b', 'a'], appliedRulePriority: 7, action: 'EXPIRE' },
    ]);
    assert.notEqual(decisions[1]!.tags, tags);
  });

  it('returns nothing for an empty repository', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } });
    assert.deepEqual(evaluateLifecycle(p, [], NOW), []);
  });

  it('does not mutate its inputs', () => {
    const p = policy(
      { priority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } },
      { priority: 1, selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 } },
    );
    const images = [image('b', [], 1), image('a', ['x'], 2), image('c', [], 3)];
    const before = JSON.stringify({ p, images });
    evaluateLifecycle(p, images, NOW);
    assert.equal(JSON.stringify({ p, images }), before);
  });

  it('rejects invalid dates', () => {
    const p = policy({ priority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 } });
    assert.throws(() => evaluateLifecycle(p, [image('a', [], 1)], new Date(Number.NaN)), RangeError);
    assert.throws(() => evaluateLifecycle(p, [{ digest: 'a', tags: [], pushedAt: new Date('nope') }], NOW), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------
// Cross-check against a direct, quadratic transcription of the rules on random repositories.

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function referenceEvaluate(p: LifecyclePolicy, images: ImageInfo[], now: Date): [string, number][] {
  const toRegExp = (pattern: string) =>
    new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  const olderFirst = (a: ImageInfo, b: ImageInfo) =>
    a.pushedAt.getTime() - b.pushedAt.getTime() || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  const claimed = new Set<ImageInfo>();
  const expiredBy = new Map<ImageInfo, number>();
  for (const rule of [...p.rules].sort((a, b) => a.rulePriority - b.rulePriority)) {
    const s = rule.selection;
    const matches = (img: ImageInfo): boolean => {
      if (s.tagStatus === 'any') return true;
      if (s.tagStatus === 'untagged') return img.tags.length === 0;
      if (s.tagPrefixList !== undefined) return s.tagPrefixList.every((prefix) => img.tags.some((t) => t.startsWith(prefix)));
      return s.tagPatternList.every((pattern) => img.tags.some((t) => toRegExp(pattern).test(t)));
    };
    const selection = images.filter(matches);
    let candidates: ImageInfo[];
    if (s.countType === 'imageCountMoreThan') {
      candidates = [...selection].sort((a, b) => olderFirst(b, a)).slice(s.countNumber);
    } else {
      candidates = selection.filter((img) => {
        const pulled = img.lastPulledAt?.getTime() ?? -Infinity;
        const reference = s.countType === 'sinceImagePushed' ? img.pushedAt.getTime() : Math.max(img.pushedAt.getTime(), pulled);
        return now.getTime() - reference > s.countNumber * DAY;
      });
    }
    for (const img of candidates) if (!claimed.has(img)) expiredBy.set(img, rule.rulePriority);
    for (const img of selection) claimed.add(img);
  }
  return [...expiredBy.keys()].sort(olderFirst).map((img) => [img.digest, expiredBy.get(img)!]);
}

describe('evaluateLifecycle: randomized cross-check', () => {
  const TAGS = ['prod', 'prod-1', 'preprod', '1.0-rc1', 'rc', 'beta-2', 'latest', 'v1', 'v10', 'app-prod', 'x'];
  const PATTERNS = ['prod*', '*prod', '*-rc*', 'v1*', '*', 'latest', 'b*-*', '*p*d*', 'x'];
  const PREFIXES = ['prod', 'v1', 'beta', 'l', 'x', 'rc'];

  it('matches the reference on 300 random repositories and policies', () => {
    const random = mulberry32(20250601);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    for (let round = 0; round < 300; round++) {
      const images: ImageInfo[] = [];
      const count = Math.floor(random() * 40);
      for (let i = 0; i < count; i++) {
        const tags = [...new Set(Array.from({ length: Math.floor(random() * 3) }, () => pick(TAGS)))];
        images.push({
          digest: `sha256:${Math.floor(random() * 1e6).toString(16).padStart(6, '0')}-${i}`,
          tags,
          // Coarse push times so that ties happen.
          pushedAt: daysAgo(Math.floor(random() * 20)),
          ...(random() < 0.5 ? { lastPulledAt: daysAgo(Math.floor(random() * 25)) } : {}),
        });
      }
      const specs: RuleSpec[] = [];
      const ruleCount = 1 + Math.floor(random() * 4);
      let usedUntagged = false;
      for (let r = 0; r < ruleCount; r++) {
        const kind = random();
        const countType = pick(['imageCountMoreThan', 'sinceImagePushed', 'sinceImagePulled'] as const);
        const count =
          countType === 'imageCountMoreThan'
            ? { countType, countNumber: 1 + Math.floor(random() * 5) }
            : { countType, countUnit: 'days', countNumber: 1 + Math.floor(random() * 15) };
        let tagPart: Record<string, unknown>;
        if (kind < 0.15 && !usedUntagged) {
          usedUntagged = true;
          tagPart = { tagStatus: 'untagged' };
        } else if (kind < 0.55) {
          tagPart = { tagStatus: 'tagged', tagPatternList: [...new Set([pick(PATTERNS), ...(random() < 0.3 ? [pick(PATTERNS)] : [])])] };
        } else {
          tagPart = { tagStatus: 'tagged', tagPrefixList: [...new Set([pick(PREFIXES), ...(random() < 0.3 ? [pick(PREFIXES)] : [])])] };
        }
        specs.push({ priority: (r + 1) * 3, selection: { ...tagPart, ...count } });
      }
      if (random() < 0.4) {
        specs.push({ priority: 1000, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 + Math.floor(random() * 10) } });
      }
      // Shuffle document order; evaluation must not depend on it.
      specs.sort(() => random() - 0.5);
      const p = policy(...specs);
      assert.deepEqual(run(p, images), referenceEvaluate(p, images, NOW), `round ${round}`);
    }
  });
});

describe('evaluateLifecycle: performance', () => {
  it('evaluates 100,000 images in one repository in well under 2 s', () => {
    const random = mulberry32(7);
    const images: ImageInfo[] = [];
    for (let i = 0; i < 100_000; i++) {
      const roll = random();
      const tags =
        roll < 0.2
          ? []
          : roll < 0.5
            ? [`prod-${i}`, `sha-${i.toString(16)}`]
            : roll < 0.7
              ? [`1.${i}-rc${i % 7}`]
              : roll < 0.9
                ? [`feature-${i}`, 'dev', `build-${i}`]
                : [`v${i}`];
      images.push({
        digest: `sha256:${i.toString(16).padStart(64, '0')}`,
        tags,
        pushedAt: new Date(NOW.getTime() - Math.floor(random() * 400) * DAY - Math.floor(random() * DAY)),
        ...(random() < 0.5 ? { lastPulledAt: new Date(NOW.getTime() - Math.floor(random() * 100) * DAY) } : {}),
      });
    }
    const p = policy(
      { priority: 1, selection: { tagStatus: 'tagged', tagPatternList: ['prod*'], countType: 'imageCountMoreThan', countNumber: 1000 } },
      { priority: 2, selection: { tagStatus: 'tagged', tagPatternList: ['*-rc*'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 } },
      { priority: 3, selection: { tagStatus: 'tagged', tagPrefixList: ['feature', 'dev'], countType: 'sinceImagePulled', countUnit: 'days', countNumber: 14 } },
      { priority: 4, selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 } },
      { priority: 5, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 5000 } },
    );
    const started = performance.now();
    const decisions = evaluateLifecycle(p, images, NOW);
    const elapsed = performance.now() - started;
    assert.ok(decisions.length > 50_000, `expected most images to expire, got ${decisions.length}`);
    assert.ok(elapsed < 2000, `took ${elapsed.toFixed(0)} ms`);
  });
});
