import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  LIFECYCLE_POLICY_TEXT_MAX_LENGTH,
  LIFECYCLE_POLICY_TEXT_MIN_LENGTH,
  LifecyclePolicyError,
  parseLifecyclePolicy,
  validateLifecyclePolicy,
} from './lifecycle-policy.ts';

const PREFIX =
  "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";

/** Serialise a document, padding with trailing whitespace (valid JSON) up to the 100-character minimum. */
function text(document: unknown): string {
  return JSON.stringify(document).padEnd(LIFECYCLE_POLICY_TEXT_MIN_LENGTH, ' ');
}

type Doc = Record<string, unknown>;

function rule(overrides: Doc = {}, selection: Doc = {}): Doc {
  return {
    rulePriority: 1,
    description: 'a rule',
    selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1, ...selection },
    action: { type: 'expire' },
    ...overrides,
  };
}

/** `selection` replaced wholesale (to drop defaults). */
function ruleWithSelection(selection: Doc, overrides: Doc = {}): Doc {
  return { ...rule(overrides), selection };
}

function policy(...rules: Doc[]): Doc {
  return { rules };
}

function expectInvalid(input: unknown, reason: string, pointer: string): LifecyclePolicyError {
  let caught: unknown;
  try {
    parseLifecyclePolicy(typeof input === 'string' ? input : text(input));
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof LifecyclePolicyError, `expected a LifecyclePolicyError, got ${String(caught)}`);
  assert.equal(caught.type, 'InvalidParameterException');
  assert.equal(caught.reason, reason);
  assert.equal(caught.pointer, pointer);
  assert.equal(caught.message, `${PREFIX}${reason}${pointer === '' ? '' : ` (at ${pointer})`}'`);
  return caught;
}

describe('parseLifecyclePolicy: valid policies', () => {
  it('parses the documented "filtering on image age" example into a normalised policy', () => {
    const parsed = parseLifecyclePolicy(`{
      "rules": [
        {
          "rulePriority": 1,
          "description": "Expire images older than 14 days",
          "selection": {
            "tagStatus": "tagged",
            "tagPatternList": ["prod*"],
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 14
          },
          "action": { "type": "expire" }
        }
      ]
    }`);
    assert.deepEqual(parsed, {
      rules: [
        {
          rulePriority: 1,
          description: 'Expire images older than 14 days',
          selection: {
            tagStatus: 'tagged',
            tagPatternList: ['prod*'],
            countType: 'sinceImagePushed',
            countUnit: 'days',
            countNumber: 14,
          },
          action: { type: 'expire' },
        },
      ],
    });
  });

  it('accepts every tagStatus / countType combination ECR allows', () => {
    const parsed = parseLifecyclePolicy(
      text(
        policy(
          rule({ rulePriority: 1 }, { tagStatus: 'tagged', tagPrefixList: ['v', 'release'], countType: 'imageCountMoreThan', countNumber: 5 }),
          rule({ rulePriority: 2 }, { tagStatus: 'tagged', tagPatternList: ['prod*', '*-rc*'], countType: 'sinceImagePulled', countUnit: 'days', countNumber: 30 }),
          rule({ rulePriority: 3 }, { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }),
          rule({ rulePriority: 4 }, { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 100 }),
        ),
      ),
    );
    assert.deepEqual(
      parsed.rules.map((r) => [r.rulePriority, r.selection.tagStatus, r.selection.countType]),
      [
        [1, 'tagged', 'imageCountMoreThan'],
        [2, 'tagged', 'sinceImagePulled'],
        [3, 'untagged', 'sinceImagePushed'],
        [4, 'any', 'imageCountMoreThan'],
      ],
    );
  });

  it('allows non-sequential priorities in any document order (the any rule still has the highest value)', () => {
    const parsed = parseLifecyclePolicy(
      text(
        policy(
          rule({ rulePriority: 100 }),
          rule({ rulePriority: 10 }, { tagStatus: 'tagged', tagPrefixList: ['a'] }),
          rule({ rulePriority: 1 }, { tagStatus: 'untagged' }),
        ),
      ),
    );
    assert.deepEqual(
      parsed.rules.map((r) => r.rulePriority),
      [100, 10, 1],
    );
  });

  it('makes description optional and allows an empty one', () => {
    const withoutDescription = rule();
    delete withoutDescription['description'];
    const parsed = parseLifecyclePolicy(text(policy(withoutDescription)));
    assert.equal(parsed.rules[0]!.description, undefined);
    assert.equal('description' in parsed.rules[0]!, false);
    assert.equal(parseLifecyclePolicy(text(policy(rule({ description: '' })))).rules[0]!.description, '');
  });

  it('allows exactly four wildcards per pattern (the documented valid example)', () => {
    const parsed = parseLifecyclePolicy(
      text(policy(rule({}, { tagStatus: 'tagged', tagPatternList: ['*test*1*2*3', 'test*1*2*3*'] }))),
    );
    assert.deepEqual(parsed.rules[0]!.selection.tagPatternList, ['*test*1*2*3', 'test*1*2*3*']);
  });

  it('allows an untagged rule together with an any rule', () => {
    assert.doesNotThrow(() =>
      parseLifecyclePolicy(text(policy(rule({ rulePriority: 1 }, { tagStatus: 'untagged' }), rule({ rulePriority: 2 })))),
    );
  });

  it('returns objects that do not alias the input', () => {
    const list = ['prod'];
    const document = policy(rule({}, { tagStatus: 'tagged', tagPrefixList: list }));
    const parsed = validateLifecyclePolicy(document);
    list.push('mutated');
    assert.deepEqual(parsed.rules[0]!.selection.tagPrefixList, ['prod']);
  });

  it('lets text of exactly the minimum and maximum length past the length check', () => {
    // No valid policy is as short as 100 characters, so show that 100 characters reach content validation.
    assert.throws(() => parseLifecyclePolicy('{"rules":[]}'.padEnd(LIFECYCLE_POLICY_TEXT_MIN_LENGTH, ' ')), {
      type: 'InvalidParameterException',
    });
    assert.doesNotThrow(() =>
      parseLifecyclePolicy(JSON.stringify(policy(rule())).padEnd(LIFECYCLE_POLICY_TEXT_MAX_LENGTH, ' ')),
    );
  });

  it('counts characters (code points), not UTF-16 units, against the maximum', () => {
    const base = JSON.stringify(policy(rule({ description: '' })));
    // Fill the description with astral characters (2 UTF-16 units each) up to exactly 30720 characters.
    const fill = LIFECYCLE_POLICY_TEXT_MAX_LENGTH - base.length;
    const document = JSON.stringify(policy(rule({ description: '😀'.repeat(fill) })));
    assert.ok(document.length > LIFECYCLE_POLICY_TEXT_MAX_LENGTH);
    assert.equal([...document].length, LIFECYCLE_POLICY_TEXT_MAX_LENGTH);
    assert.doesNotThrow(() => parseLifecyclePolicy(document));
  });
});

describe('parseLifecyclePolicy: text length (ValidationException)', () => {
  it('rejects text shorter than 100 characters', () => {
    const short = '{"rules":[]}';
    assert.throws(
      () => parseLifecyclePolicy(short),
      (error: unknown) => {
        assert.ok(error instanceof LifecyclePolicyError);
        assert.equal(error.type, 'ValidationException');
        assert.equal(
          error.message,
          "1 validation error detected: Value at 'lifecyclePolicyText' failed to satisfy constraint: Member must have length greater than or equal to 100",
        );
        return true;
      },
    );
    assert.throws(() => parseLifecyclePolicy(''.padEnd(99, ' ')), { type: 'ValidationException' });
  });

  it('rejects text longer than 30720 characters', () => {
    assert.throws(
      () => parseLifecyclePolicy(JSON.stringify(policy(rule())).padEnd(LIFECYCLE_POLICY_TEXT_MAX_LENGTH + 1, ' ')),
      (error: unknown) => {
        assert.ok(error instanceof LifecyclePolicyError);
        assert.equal(error.type, 'ValidationException');
        assert.equal(
          error.message,
          "1 validation error detected: Value at 'lifecyclePolicyText' failed to satisfy constraint: Member must have length less than or equal to 30720",
        );
        return true;
      },
    );
  });
});

describe('parseLifecyclePolicy: invalid policies (InvalidParameterException)', () => {
  const cannotMap = 'Could not map policyString into LifecyclePolicy';

  it('rejects text that is not JSON', () => {
    const error = expectInvalid('{"rules": ['.padEnd(120, ' '), cannotMap, '');
    assert.equal(
      error.message,
      "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: Could not map policyString into LifecyclePolicy'",
    );
  });

  it('rejects JSON that is not an object', () => {
    expectInvalid([policy(rule())], cannotMap, '');
    expectInvalid('"a string"'.padEnd(100, ' '), cannotMap, '');
    expectInvalid('null'.padEnd(100, ' '), cannotMap, '');
    assert.throws(() => validateLifecyclePolicy(undefined), { reason: cannotMap });
  });

  describe('document', () => {
    it('requires rules', () => {
      const error = expectInvalid({ description: 'x' }, 'object has missing required properties (["rules"])', '');
      assert.equal(
        error.message,
        `${PREFIX}object has missing required properties (["rules"])'`,
      );
    });
    it('rejects unknown top-level fields', () => {
      expectInvalid(
        { ...policy(rule()), version: 1, $schema: 'x' },
        'object instance has properties which are not allowed by the schema: (["$schema","version"])',
        '',
      );
    });
    it('requires rules to be an array', () => {
      expectInvalid(
        { rules: rule() },
        'instance type (object) does not match any allowed primitive type (allowed: ["array"])',
        '/rules',
      );
    });
    it('requires at least one rule', () => {
      expectInvalid({ rules: [] }, 'array is too short: must have at least 1 elements but instance has 0 elements', '/rules');
    });
  });

  describe('rule', () => {
    it('must be an object', () => {
      expectInvalid(
        policy(rule(), 'rule' as unknown as Doc),
        'instance type (string) does not match any allowed primitive type (allowed: ["object"])',
        '/rules/1',
      );
    });
    it('requires rulePriority, selection and action', () => {
      expectInvalid(
        policy({ description: 'only a description, which is long enough to pass the length check' }),
        'object has missing required properties (["action","rulePriority","selection"])',
        '/rules/0',
      );
      const noAction = rule();
      delete noAction['action'];
      expectInvalid(policy(noAction), 'object has missing required properties (["action"])', '/rules/0');
    });
    it('rejects unknown fields', () => {
      expectInvalid(
        policy(rule({ priority: 1 })),
        'object instance has properties which are not allowed by the schema: (["priority"])',
        '/rules/0',
      );
    });
    it('requires rulePriority to be an integer', () => {
      expectInvalid(
        policy(rule({ rulePriority: '1' })),
        'instance type (string) does not match any allowed primitive type (allowed: ["integer"])',
        '/rules/0/rulePriority',
      );
      expectInvalid(
        policy(rule({ rulePriority: 1.5 })),
        'instance type (number) does not match any allowed primitive type (allowed: ["integer"])',
        '/rules/0/rulePriority',
      );
      expectInvalid(
        policy(rule({ rulePriority: null })),
        'instance type (null) does not match any allowed primitive type (allowed: ["integer"])',
        '/rules/0/rulePriority',
      );
    });
    it('requires rulePriority to be positive', () => {
      expectInvalid(
        policy(rule({ rulePriority: 0 })),
        'numeric instance is lower than the required minimum (minimum: 1, found: 0)',
        '/rules/0/rulePriority',
      );
      expectInvalid(
        policy(rule({ rulePriority: -3 })),
        'numeric instance is lower than the required minimum (minimum: 1, found: -3)',
        '/rules/0/rulePriority',
      );
    });
    it('requires description, when present, to be a string', () => {
      expectInvalid(
        policy(rule({ description: 42 })),
        'instance type (integer) does not match any allowed primitive type (allowed: ["string"])',
        '/rules/0/description',
      );
    });
  });

  describe('selection', () => {
    it('must be an object', () => {
      expectInvalid(
        policy(rule({ selection: ['any'] })),
        'instance type (array) does not match any allowed primitive type (allowed: ["object"])',
        '/rules/0/selection',
      );
    });
    it('requires tagStatus, countType and countNumber', () => {
      expectInvalid(
        policy(ruleWithSelection({ countUnit: 'days' })),
        'object has missing required properties (["countNumber","countType","tagStatus"])',
        '/rules/0/selection',
      );
      expectInvalid(
        policy(ruleWithSelection({ tagStatus: 'any', countType: 'imageCountMoreThan' })),
        'object has missing required properties (["countNumber"])',
        '/rules/0/selection',
      );
    });
    it('rejects unknown fields (including the archive storage class, which is not supported)', () => {
      expectInvalid(
        policy(rule({}, { storageClass: 'standard' })),
        'object instance has properties which are not allowed by the schema: (["storageClass"])',
        '/rules/0/selection',
      );
      expectInvalid(
        policy(rule({}, { tagPrefix: 'prod' })),
        'object instance has properties which are not allowed by the schema: (["tagPrefix"])',
        '/rules/0/selection',
      );
    });
    it('requires tagStatus to be tagged, untagged or any (case-sensitive)', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'TAGGED' })),
        'instance value ("TAGGED") not found in enum (possible values: ["tagged","untagged","any"])',
        '/rules/0/selection/tagStatus',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 1 })),
        'instance value (1) not found in enum (possible values: ["tagged","untagged","any"])',
        '/rules/0/selection/tagStatus',
      );
    });
    it('tagged requires tagPrefixList or tagPatternList', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged' })),
        'Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED',
        '/rules/0/selection',
      );
    });
    it('tagged must not have both tagPrefixList and tagPatternList', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPrefixList: ['prod'], tagPatternList: ['prod*'] })),
        'tagPrefixList and tagPatternList cannot both be specified in one rule',
        '/rules/0/selection',
      );
    });
    it('untagged must omit both tagPrefixList and tagPatternList', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'untagged', tagPrefixList: ['prod'] })),
        'tagPrefixList can only be specified when tagStatus=TAGGED (tagStatus is untagged)',
        '/rules/0/selection/tagPrefixList',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'untagged', tagPatternList: ['prod*'] })),
        'tagPatternList can only be specified when tagStatus=TAGGED (tagStatus is untagged)',
        '/rules/0/selection/tagPatternList',
      );
    });
    it('any must omit both tagPrefixList and tagPatternList', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'any', tagPrefixList: ['prod'] })),
        'tagPrefixList can only be specified when tagStatus=TAGGED (tagStatus is any)',
        '/rules/0/selection/tagPrefixList',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'any', tagPatternList: ['*'] })),
        'tagPatternList can only be specified when tagStatus=TAGGED (tagStatus is any)',
        '/rules/0/selection/tagPatternList',
      );
    });
    it('requires the tag lists to be non-empty arrays of non-empty strings', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPrefixList: 'prod' })),
        'instance type (string) does not match any allowed primitive type (allowed: ["array"])',
        '/rules/0/selection/tagPrefixList',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPatternList: [] })),
        'array is too short: must have at least 1 elements but instance has 0 elements',
        '/rules/0/selection/tagPatternList',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPrefixList: ['prod', 7] })),
        'instance type (integer) does not match any allowed primitive type (allowed: ["string"])',
        '/rules/0/selection/tagPrefixList/1',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPatternList: [''] })),
        'string "" is too short (length: 0, required minimum: 1)',
        '/rules/0/selection/tagPatternList/0',
      );
    });
    it('allows at most four wildcards per tag pattern (the documented invalid example)', () => {
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPatternList: ['prod*', 'test*1*2*3*4*5*6'] })),
        'tag pattern "test*1*2*3*4*5*6" has 6 wildcards but at most 4 wildcards (*) are allowed per pattern',
        '/rules/0/selection/tagPatternList/1',
      );
      expectInvalid(
        policy(rule({}, { tagStatus: 'tagged', tagPatternList: ['*****'] })),
        'tag pattern "*****" has 5 wildcards but at most 4 wildcards (*) are allowed per pattern',
        '/rules/0/selection/tagPatternList/0',
      );
    });
    it('requires countType to be imageCountMoreThan, sinceImagePushed or sinceImagePulled', () => {
      expectInvalid(
        policy(rule({}, { countType: 'sinceImageTransitioned', countUnit: 'days' })),
        'instance value ("sinceImageTransitioned") not found in enum (possible values: ["imageCountMoreThan","sinceImagePushed","sinceImagePulled"])',
        '/rules/0/selection/countType',
      );
    });
    it('requires countUnit with sinceImagePushed and sinceImagePulled', () => {
      expectInvalid(
        policy(rule({}, { countType: 'sinceImagePushed', countNumber: 14 })),
        'countUnit must be specified when countType is sinceImagePushed',
        '/rules/0/selection',
      );
      expectInvalid(
        policy(rule({}, { countType: 'sinceImagePulled', countNumber: 14 })),
        'countUnit must be specified when countType is sinceImagePulled',
        '/rules/0/selection',
      );
    });
    it('forbids countUnit with imageCountMoreThan', () => {
      expectInvalid(
        policy(rule({}, { countType: 'imageCountMoreThan', countUnit: 'days' })),
        'countUnit can only be specified when countType is sinceImagePushed or sinceImagePulled',
        '/rules/0/selection/countUnit',
      );
    });
    it('allows only days as countUnit', () => {
      expectInvalid(
        policy(rule({}, { countType: 'sinceImagePushed', countUnit: 'hours' })),
        'instance value ("hours") not found in enum (possible values: ["days"])',
        '/rules/0/selection/countUnit',
      );
      expectInvalid(
        policy(rule({}, { countType: 'sinceImagePushed', countUnit: 'Days' })),
        'instance value ("Days") not found in enum (possible values: ["days"])',
        '/rules/0/selection/countUnit',
      );
    });
    it('requires countNumber to be a positive integer', () => {
      expectInvalid(
        policy(rule({}, { countNumber: 0 })),
        'numeric instance is lower than the required minimum (minimum: 1, found: 0)',
        '/rules/0/selection/countNumber',
      );
      expectInvalid(
        policy(rule({}, { countNumber: -1 })),
        'numeric instance is lower than the required minimum (minimum: 1, found: -1)',
        '/rules/0/selection/countNumber',
      );
      expectInvalid(
        policy(rule({}, { countNumber: 2.5 })),
        'instance type (number) does not match any allowed primitive type (allowed: ["integer"])',
        '/rules/0/selection/countNumber',
      );
      expectInvalid(
        policy(rule({}, { countNumber: '5' })),
        'instance type (string) does not match any allowed primitive type (allowed: ["integer"])',
        '/rules/0/selection/countNumber',
      );
    });
  });

  describe('action', () => {
    it('must be an object', () => {
      expectInvalid(
        policy(rule({ action: 'expire' })),
        'instance type (string) does not match any allowed primitive type (allowed: ["object"])',
        '/rules/0/action',
      );
    });
    it('requires type', () => {
      expectInvalid(policy(rule({ action: {} })), 'object has missing required properties (["type"])', '/rules/0/action');
    });
    it('rejects unknown fields', () => {
      expectInvalid(
        policy(rule({ action: { type: 'expire', targetStorageClass: 'archive' } })),
        'object instance has properties which are not allowed by the schema: (["targetStorageClass"])',
        '/rules/0/action',
      );
    });
    it('allows only expire', () => {
      expectInvalid(
        policy(rule({ action: { type: 'transition' } })),
        'instance value ("transition") not found in enum (possible values: ["expire"])',
        '/rules/0/action/type',
      );
      expectInvalid(
        policy(rule({ action: { type: 'EXPIRE' } })),
        'instance value ("EXPIRE") not found in enum (possible values: ["expire"])',
        '/rules/0/action/type',
      );
    });
  });

  describe('across rules', () => {
    it('requires unique rule priorities', () => {
      expectInvalid(
        policy(
          rule({ rulePriority: 1 }, { tagStatus: 'tagged', tagPrefixList: ['a'] }),
          rule({ rulePriority: 2 }, { tagStatus: 'tagged', tagPrefixList: ['b'] }),
          rule({ rulePriority: 1 }, { tagStatus: 'tagged', tagPrefixList: ['c'] }),
        ),
        'rulePriority must be unique but 1 is used by more than one rule',
        '/rules/2/rulePriority',
      );
    });
    it('allows only one rule to select untagged images', () => {
      expectInvalid(
        policy(
          rule({ rulePriority: 1 }, { tagStatus: 'untagged' }),
          rule({ rulePriority: 2 }, { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days' }),
        ),
        'Only one rule can select untagged images',
        '/rules/1/selection/tagStatus',
      );
    });
    it('requires the any rule to have the highest rulePriority', () => {
      expectInvalid(
        policy(rule({ rulePriority: 1 }), rule({ rulePriority: 2 }, { tagStatus: 'tagged', tagPrefixList: ['prod'] })),
        'the rule with tagStatus=any must have the highest rulePriority (it has 1; highest is 2)',
        '/rules/0/rulePriority',
      );
    });
    it('therefore allows at most one any rule', () => {
      expectInvalid(
        policy(rule({ rulePriority: 5 }), rule({ rulePriority: 3, description: 'second any rule' })),
        'the rule with tagStatus=any must have the highest rulePriority (it has 3; highest is 5)',
        '/rules/1/rulePriority',
      );
    });
    it('checks priorities before the any-last rule', () => {
      expectInvalid(
        policy(rule({ rulePriority: 2 }), rule({ rulePriority: 2 }, { tagStatus: 'untagged' })),
        'rulePriority must be unique but 2 is used by more than one rule',
        '/rules/1/rulePriority',
      );
    });
  });
});
