/**
 * ECR lifecycle policy grammar: parsing and validation of `lifecyclePolicyText`.
 *
 * Sources (Amazon ECR User Guide):
 *  - "Lifecycle policy properties" (lifecycle_policy_parameters): rulePriority, description, tagStatus,
 *    tagPatternList, tagPrefixList, countType, countUnit, countNumber, action.type.
 *  - "Lifecycle policy evaluation rules" (LifecyclePolicies#lp_evaluation_rules).
 *  - ECR API reference, PutLifecyclePolicy: lifecyclePolicyText length 100..30720.
 *
 * Structural errors are phrased the way ECR phrases them (ECR validates with a JSON-schema validator and
 * returns its messages, e.g. `object has missing required properties (["countType"])`); rule-level and
 * cross-rule errors follow the wording ECR is observed to return (e.g. "Must specify tagPrefixList or
 * tagPatternList when tagStatus=TAGGED", "Only one rule can select untagged images"). Each message ends
 * with the JSON pointer of the offending value, e.g. `(at /rules/0/selection)`, which ECR does not do but
 * which makes the error actionable.
 *
 * Deliberately out of scope: the archive storage class (`selection.storageClass`,
 * `countType: sinceImageTransitioned`, `action.type: transition`, `action.targetStorageClass`); those
 * fields are rejected as unknown properties.
 */

export const LIFECYCLE_POLICY_TEXT_MIN_LENGTH = 100;
export const LIFECYCLE_POLICY_TEXT_MAX_LENGTH = 30_720;
/** "There is a maximum limit of four wildcards (*) per string." (tagPatternList) */
export const MAX_WILDCARDS_PER_TAG_PATTERN = 4;

export const TAG_STATUSES = ['tagged', 'untagged', 'any'] as const;
export const COUNT_TYPES = ['imageCountMoreThan', 'sinceImagePushed', 'sinceImagePulled'] as const;
export const COUNT_UNITS = ['days'] as const;
export const ACTION_TYPES = ['expire'] as const;

export type TagStatus = (typeof TAG_STATUSES)[number];
export type CountType = (typeof COUNT_TYPES)[number];
export type CountUnit = (typeof COUNT_UNITS)[number];
export type ActionType = (typeof ACTION_TYPES)[number];

/** `tagged` with a prefix list: the image must have, for every prefix, a tag starting with it. */
export interface TaggedPrefixSelection {
  readonly tagStatus: 'tagged';
  readonly tagPrefixList: readonly string[];
  readonly tagPatternList?: undefined;
}
/** `tagged` with a pattern list: the image must have, for every pattern, a tag matching it (`*` = any run). */
export interface TaggedPatternSelection {
  readonly tagStatus: 'tagged';
  readonly tagPatternList: readonly string[];
  readonly tagPrefixList?: undefined;
}
export interface UntaggedSelection {
  readonly tagStatus: 'untagged';
  readonly tagPrefixList?: undefined;
  readonly tagPatternList?: undefined;
}
export interface AnySelection {
  readonly tagStatus: 'any';
  readonly tagPrefixList?: undefined;
  readonly tagPatternList?: undefined;
}
export type TagSelection = TaggedPrefixSelection | TaggedPatternSelection | UntaggedSelection | AnySelection;

export interface ImageCountSelection {
  readonly countType: 'imageCountMoreThan';
  /** Keep this many of the newest selected images (by push time); expire the rest. */
  readonly countNumber: number;
  readonly countUnit?: undefined;
}
export interface AgeSelection {
  readonly countType: 'sinceImagePushed' | 'sinceImagePulled';
  readonly countUnit: CountUnit;
  /** Expire selected images older than this many `countUnit`s. */
  readonly countNumber: number;
}
export type CountSelection = ImageCountSelection | AgeSelection;

export type LifecycleSelection = TagSelection & CountSelection;

export interface LifecycleAction {
  readonly type: ActionType;
}

export interface LifecycleRule {
  readonly rulePriority: number;
  readonly description?: string;
  readonly selection: LifecycleSelection;
  readonly action: LifecycleAction;
}

export interface LifecyclePolicy {
  /** Rules in document order (priorities are unique; evaluation orders them by `rulePriority`). */
  readonly rules: readonly LifecycleRule[];
}

/** The ECR exception name the API surface should return for this error. */
export type LifecyclePolicyErrorType = 'InvalidParameterException' | 'ValidationException';

const INVALID_PARAMETER_PREFIX =
  "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";

export class LifecyclePolicyError extends Error {
  override readonly name = 'LifecyclePolicyError';

  private constructor(
    /** ECR exception name: `InvalidParameterException` for policy content, `ValidationException` for length. */
    readonly type: LifecyclePolicyErrorType,
    message: string,
    /** The failure on its own, without the API wrapper text or the pointer. */
    readonly reason: string,
    /** JSON pointer (RFC 6901) of the offending value; `''` for the whole document. */
    readonly pointer: string,
  ) {
    super(message);
  }

  /** A policy-content failure, returned by ECR as InvalidParameterException. */
  static invalid(reason: string, pointer = ''): LifecyclePolicyError {
    const where = pointer === '' ? '' : ` (at ${pointer})`;
    return new LifecyclePolicyError(
      'InvalidParameterException',
      `${INVALID_PARAMETER_PREFIX}${reason}${where}'`,
      reason,
      pointer,
    );
  }

  /** A request-level length constraint failure, returned by ECR as ValidationException. */
  static lengthViolation(reason: string): LifecyclePolicyError {
    return new LifecyclePolicyError(
      'ValidationException',
      `1 validation error detected: Value at 'lifecyclePolicyText' failed to satisfy constraint: ${reason}`,
      reason,
      '',
    );
  }
}

/**
 * Parse and validate a lifecycle policy document (the `lifecyclePolicyText` of PutLifecyclePolicy /
 * StartLifecyclePolicyPreview). Throws {@link LifecyclePolicyError} on the first violation found.
 */
export function parseLifecyclePolicy(text: string): LifecyclePolicy {
  if (typeof text !== 'string') {
    throw LifecyclePolicyError.invalid('Could not map policyString into LifecyclePolicy');
  }
  // The service quota is stated in characters; count code points (an astral character is one character).
  const length = countCodePoints(text);
  if (length < LIFECYCLE_POLICY_TEXT_MIN_LENGTH) {
    throw LifecyclePolicyError.lengthViolation(
      `Member must have length greater than or equal to ${LIFECYCLE_POLICY_TEXT_MIN_LENGTH}`,
    );
  }
  if (length > LIFECYCLE_POLICY_TEXT_MAX_LENGTH) {
    throw LifecyclePolicyError.lengthViolation(`Member must have length less than or equal to ${LIFECYCLE_POLICY_TEXT_MAX_LENGTH}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw LifecyclePolicyError.invalid('Could not map policyString into LifecyclePolicy');
  }
  return validateLifecyclePolicy(document);
}

/**
 * Validate an already-decoded policy document (same rules as {@link parseLifecyclePolicy} minus the text
 * length limits). Returns a fresh, normalised object that shares nothing with the input.
 */
export function validateLifecyclePolicy(document: unknown): LifecyclePolicy {
  if (jsonType(document) !== 'object') {
    throw LifecyclePolicyError.invalid('Could not map policyString into LifecyclePolicy');
  }
  const root = document as Record<string, unknown>;
  checkProperties(root, ['rules'], ['rules'], '');
  const rawRules = root['rules'];
  expectType(rawRules, 'array', '/rules');
  const list = rawRules as unknown[];
  if (list.length === 0) fail(tooShortArray(1, 0), '/rules');

  const rules = list.map((raw, index) => validateRule(raw, `/rules/${index}`));

  // Cross-rule constraints, checked in document order so the reported rule is the later offender.
  const seenPriorities = new Set<number>();
  rules.forEach((rule, index) => {
    if (seenPriorities.has(rule.rulePriority)) {
      // "When you add rules to a lifecycle policy, you must give them each a unique value for rulePriority."
      fail(`rulePriority must be unique but ${rule.rulePriority} is used by more than one rule`, `/rules/${index}/rulePriority`);
    }
    seenPriorities.add(rule.rulePriority);
  });

  let untaggedRules = 0;
  rules.forEach((rule, index) => {
    if (rule.selection.tagStatus !== 'untagged') return;
    // Evaluation rules: "Only one rule is allowed to select untagged images." A tagStatus=any rule also
    // sees untagged images but is not counted here (ECR accepts `untagged` + `any` policies).
    untaggedRules += 1;
    if (untaggedRules > 1) fail('Only one rule can select untagged images', `/rules/${index}/selection/tagStatus`);
  });

  const highestPriority = Math.max(...rules.map((rule) => rule.rulePriority));
  rules.forEach((rule, index) => {
    // "A rule with a tagStatus value of any must have the highest value for rulePriority and be evaluated
    // last." With unique priorities this also means at most one `any` rule.
    if (rule.selection.tagStatus === 'any' && rule.rulePriority !== highestPriority) {
      fail(
        `the rule with tagStatus=any must have the highest rulePriority (it has ${rule.rulePriority}; highest is ${highestPriority})`,
        `/rules/${index}/rulePriority`,
      );
    }
  });

  return { rules };
}

function validateRule(raw: unknown, pointer: string): LifecycleRule {
  expectType(raw, 'object', pointer);
  const rule = raw as Record<string, unknown>;
  checkProperties(rule, ['rulePriority', 'selection', 'action'], ['rulePriority', 'description', 'selection', 'action'], pointer);

  const rulePriority = rule['rulePriority'];
  expectType(rulePriority, 'integer', `${pointer}/rulePriority`);
  expectMinimum(rulePriority as number, 1, `${pointer}/rulePriority`);

  const description = rule['description'];
  if (isPresent(rule, 'description')) expectType(description, 'string', `${pointer}/description`);

  const selection = validateSelection(rule['selection'], `${pointer}/selection`);
  const action = validateAction(rule['action'], `${pointer}/action`);

  return {
    rulePriority: rulePriority as number,
    ...(isPresent(rule, 'description') ? { description: description as string } : {}),
    selection,
    action,
  };
}

function validateSelection(raw: unknown, pointer: string): LifecycleSelection {
  expectType(raw, 'object', pointer);
  const selection = raw as Record<string, unknown>;
  checkProperties(
    selection,
    ['tagStatus', 'countType', 'countNumber'],
    ['tagStatus', 'tagPatternList', 'tagPrefixList', 'countType', 'countUnit', 'countNumber'],
    pointer,
  );

  const tagStatus = expectEnum(selection['tagStatus'], TAG_STATUSES, `${pointer}/tagStatus`);
  const prefixes = isPresent(selection, 'tagPrefixList')
    ? validateStringList(selection['tagPrefixList'], `${pointer}/tagPrefixList`)
    : undefined;
  const patterns = isPresent(selection, 'tagPatternList')
    ? validateStringList(selection['tagPatternList'], `${pointer}/tagPatternList`)
    : undefined;
  patterns?.forEach((pattern, index) => {
    let wildcards = 0;
    for (const char of pattern) if (char === '*') wildcards += 1;
    if (wildcards > MAX_WILDCARDS_PER_TAG_PATTERN) {
      fail(
        `tag pattern ${JSON.stringify(pattern)} has ${wildcards} wildcards but at most ${MAX_WILDCARDS_PER_TAG_PATTERN} wildcards (*) are allowed per pattern`,
        `${pointer}/tagPatternList/${index}`,
      );
    }
  });
  const countType = expectEnum(selection['countType'], COUNT_TYPES, `${pointer}/countType`);
  const countUnit = isPresent(selection, 'countUnit')
    ? expectEnum(selection['countUnit'], COUNT_UNITS, `${pointer}/countUnit`)
    : undefined;
  const countNumber = selection['countNumber'];
  expectType(countNumber, 'integer', `${pointer}/countNumber`);
  // "Acceptable values are positive integers (0 is not an accepted value)."
  expectMinimum(countNumber as number, 1, `${pointer}/countNumber`);

  let tags: TagSelection;
  if (tagStatus === 'tagged') {
    // "A lifecycle policy rule may specify either tagPatternList or tagPrefixList, but not both."
    if (prefixes !== undefined && patterns !== undefined) {
      fail('tagPrefixList and tagPatternList cannot both be specified in one rule', pointer);
    }
    if (prefixes !== undefined) tags = { tagStatus, tagPrefixList: prefixes };
    else if (patterns !== undefined) tags = { tagStatus, tagPatternList: patterns };
    // "If you specify tagged, then you must also specify a tagPrefixList value or a tagPatternList value."
    else fail('Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED', pointer);
  } else {
    // "If you specify untagged, then you must omit both tagPrefixList and tagPatternList." The lists mean
    // nothing for `any` either, so they are rejected there too rather than silently ignored.
    if (prefixes !== undefined) {
      fail(`tagPrefixList can only be specified when tagStatus=TAGGED (tagStatus is ${tagStatus})`, `${pointer}/tagPrefixList`);
    }
    if (patterns !== undefined) {
      fail(`tagPatternList can only be specified when tagStatus=TAGGED (tagStatus is ${tagStatus})`, `${pointer}/tagPatternList`);
    }
    tags = { tagStatus };
  }

  let count: CountSelection;
  if (countType === 'imageCountMoreThan') {
    // countUnit: "an error will occur if you specify a count unit when countType is any other value."
    if (countUnit !== undefined) {
      fail('countUnit can only be specified when countType is sinceImagePushed or sinceImagePulled', `${pointer}/countUnit`);
    }
    count = { countType, countNumber: countNumber as number };
  } else {
    if (countUnit === undefined) fail(`countUnit must be specified when countType is ${countType}`, pointer);
    count = { countType, countUnit, countNumber: countNumber as number };
  }

  return { ...tags, ...count } as LifecycleSelection;
}

function validateAction(raw: unknown, pointer: string): LifecycleAction {
  expectType(raw, 'object', pointer);
  const action = raw as Record<string, unknown>;
  checkProperties(action, ['type'], ['type'], pointer);
  return { type: expectEnum(action['type'], ACTION_TYPES, `${pointer}/type`) };
}

function validateStringList(raw: unknown, pointer: string): string[] {
  expectType(raw, 'array', pointer);
  const list = raw as unknown[];
  if (list.length === 0) fail(tooShortArray(1, 0), pointer);
  return list.map((item, index) => {
    expectType(item, 'string', `${pointer}/${index}`);
    const value = item as string;
    if (value.length === 0) fail('string "" is too short (length: 0, required minimum: 1)', `${pointer}/${index}`);
    return value;
  });
}

// ---------------------------------------------------------------------------------------------------
// JSON-schema-style checks, with the validator's wording.

type JsonType = 'null' | 'boolean' | 'integer' | 'number' | 'string' | 'array' | 'object';

function jsonType(value: unknown): JsonType | 'undefined' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'number';
    case 'string':
      return 'string';
    case 'object':
      return 'object';
    default:
      return 'undefined';
  }
}

function fail(reason: string, pointer: string): never {
  throw LifecyclePolicyError.invalid(reason, pointer);
}

function isPresent(object: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key) && object[key] !== undefined;
}

function expectType(value: unknown, expected: JsonType, pointer: string): void {
  const actual = jsonType(value);
  if (actual !== expected) {
    fail(`instance type (${actual}) does not match any allowed primitive type (allowed: ["${expected}"])`, pointer);
  }
}

function expectMinimum(value: number, minimum: number, pointer: string): void {
  if (value < minimum) {
    fail(`numeric instance is lower than the required minimum (minimum: ${minimum}, found: ${value})`, pointer);
  }
}

function expectEnum<const T extends readonly string[]>(value: unknown, allowed: T, pointer: string): T[number] {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    fail(
      `instance value (${JSON.stringify(value) ?? 'undefined'}) not found in enum (possible values: ${JSON.stringify(allowed)})`,
      pointer,
    );
  }
  return value as T[number];
}

function checkProperties(
  object: Record<string, unknown>,
  required: readonly string[],
  allowed: readonly string[],
  pointer: string,
): void {
  const missing = required.filter((key) => !isPresent(object, key)).sort();
  if (missing.length > 0) fail(`object has missing required properties (${JSON.stringify(missing)})`, pointer);
  const extra = Object.keys(object)
    .filter((key) => !allowed.includes(key))
    .sort();
  if (extra.length > 0) {
    fail(`object instance has properties which are not allowed by the schema: (${JSON.stringify(extra)})`, pointer);
  }
}

function tooShortArray(minimum: number, found: number): string {
  return `array is too short: must have at least ${minimum} elements but instance has ${found} elements`;
}

function countCodePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low surrogate is one character.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count -= 1;
        i += 1;
      }
    }
  }
  return count;
}
