/**
 * IAM-style identity policies for Cistern: parsing (zod) and a pure evaluator.
 *
 * Semantics follow AWS IAM identity-based policies, restricted to the elements Cistern supports:
 *  - `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`, optional `Sid`; `Condition` is rejected.
 *  - Evaluation: an explicit Deny in any statement of any document wins; otherwise any matching Allow
 *    allows; otherwise the request is implicitly denied.
 *  - Actions match case-insensitively (service prefix and action name); resources match
 *    case-sensitively. Both support `*` (any run of characters, including `/` and `:`) and `?`
 *    (exactly one character); every other character is literal.
 *  - `NotAction`/`NotResource`: the statement applies when the request's action/resource matches
 *    none of the listed patterns.
 *
 * Wildcard patterns compile to RegExps once per document (cached in a WeakMap keyed by the document,
 * backed by a bounded pattern cache), with regex metacharacters escaped. Compiled patterns never
 * backtrack catastrophically: the text between stars is matched at its leftmost occurrence inside
 * an atomic lookahead, so matching is O(pattern × input) whatever the pattern.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Types

export const POLICY_VERSIONS = ['2012-10-17', '2008-10-17'] as const;
export type PolicyVersion = (typeof POLICY_VERSIONS)[number];
export type PolicyEffect = 'Allow' | 'Deny';

export type ActionClause =
  | { readonly Action: readonly string[]; readonly NotAction?: never }
  | { readonly NotAction: readonly string[]; readonly Action?: never };
export type ResourceClause =
  | { readonly Resource: readonly string[]; readonly NotResource?: never }
  | { readonly NotResource: readonly string[]; readonly Resource?: never };

/** One statement, normalised: single strings become one-element arrays. */
export type PolicyStatement = { readonly Sid?: string; readonly Effect: PolicyEffect } & ActionClause & ResourceClause;

/**
 * A validated policy document. Documents returned by {@link parsePolicyDocument} are deeply frozen;
 * a hand-built document must not be mutated once it has been passed to {@link authorize}, because
 * its compiled form is cached.
 */
export interface PolicyDocument {
  readonly Version?: PolicyVersion;
  readonly Id?: string;
  readonly Statement: readonly PolicyStatement[];
}

export interface AuthorizationRequest {
  /** `<service>:<ActionName>`, e.g. `ecr:BatchGetImage`. */
  readonly action: string;
  /** The target ARN, or `*` for actions with no resource (e.g. `ecr:GetAuthorizationToken`). */
  readonly resource: string;
}

export interface MatchedStatement {
  /** Index of the document in the array given to {@link authorize}. */
  readonly documentIndex: number;
  /** Index of the statement within that document. */
  readonly statementIndex: number;
  readonly statement: PolicyStatement;
}

export type DenialReason = 'explicit-deny' | 'implicit-deny';

export type AuthorizationDecision =
  | { readonly allowed: true; readonly reason: 'allowed'; readonly statement: MatchedStatement }
  | { readonly allowed: false; readonly reason: 'explicit-deny'; readonly statement: MatchedStatement }
  | { readonly allowed: false; readonly reason: 'implicit-deny'; readonly statement?: undefined };

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    message: string,
    /** Each problem as `<path>: <message>`. */
    readonly issues: readonly string[] = [message],
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

const STATEMENT_KEYS = ['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource'] as const;
const DOCUMENT_KEYS = ['Version', 'Id', 'Statement'] as const;

/** `*`, or `<service>:<action>` where both parts may hold `*`/`?` wildcards. */
const ACTION_PATTERN = /^(?:\*|[A-Za-z0-9*?-]+:[A-Za-z0-9_*?-]+)$/;
const SID_PATTERN = /^[A-Za-z0-9]+$/;

function actionProblem(action: string): string | undefined {
  if (ACTION_PATTERN.test(action)) return undefined;
  return (
    `${JSON.stringify(action)} is not a valid action: expected "*" or "<service>:<action>" ` +
    `such as "ecr:BatchGetImage" (the wildcards * and ? are allowed)`
  );
}

function resourceProblem(resource: string): string | undefined {
  if (resource.includes('${')) {
    return `${JSON.stringify(resource)} uses a policy variable; policy variables such as \${aws:username} are not supported`;
  }
  if (resource === '*' || (resource.startsWith('arn:') && resource.length > 4)) return undefined;
  return (
    `${JSON.stringify(resource)} is not a valid resource: expected "*" or an ARN ` +
    `such as "arn:aws:ecr:us-east-1:123456789012:repository/name"`
  );
}

/** A string or a non-empty array of strings, each checked by `problem`; normalised to an array. */
function patternList(element: string, problem: (value: string) => string | undefined) {
  return z
    .union([z.string(), z.array(z.string({ error: `each ${element} must be a string` })).min(1, `${element} must not be an empty array`)], {
      error: `${element} must be a string or a non-empty array of strings`,
    })
    .superRefine((value, ctx) => {
      const items = typeof value === 'string' ? [value] : value;
      items.forEach((item, index) => {
        const message = problem(item);
        if (message) ctx.addIssue({ code: 'custom', message, path: typeof value === 'string' ? [] : [index] });
      });
    })
    .transform((value): string[] => (typeof value === 'string' ? [value] : value));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const unsupported = (message: string) => z.never({ error: message }).optional();
const PRINCIPAL_MESSAGE = 'is not allowed in an identity-based policy: the policy applies to the identity it is attached to';

const statementSchema = z
  .strictObject(
    {
      Sid: z
        .string({ error: 'Sid must be a string' })
        .regex(SID_PATTERN, 'Sid must be a non-empty string of ASCII letters and digits')
        .optional(),
      Effect: z.enum(['Allow', 'Deny'], {
        error: (issue) => (issue.input === undefined ? 'Effect is required' : 'Effect must be "Allow" or "Deny" (case-sensitive)'),
      }),
      Action: patternList('Action', actionProblem).optional(),
      NotAction: patternList('NotAction', actionProblem).optional(),
      Resource: patternList('Resource', resourceProblem).optional(),
      NotResource: patternList('NotResource', resourceProblem).optional(),
      Condition: unsupported(
        'Condition is not supported by Cistern policies: only Effect, Action/NotAction and Resource/NotResource are evaluated; ' +
          'remove the Condition block',
      ),
      Principal: unsupported(`Principal ${PRINCIPAL_MESSAGE}`),
      NotPrincipal: unsupported(`NotPrincipal ${PRINCIPAL_MESSAGE}`),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')} in a policy statement; ` +
            `allowed keys are ${STATEMENT_KEYS.join(', ')}`
          : issue.input === undefined || Array.isArray(issue.input) || typeof issue.input !== 'object'
            ? 'each statement must be a JSON object'
            : undefined,
    },
  )
  .superRefine(
    (statement, ctx) => {
      for (const [positive, negative] of [
        ['Action', 'NotAction'],
        ['Resource', 'NotResource'],
      ] as const) {
        const hasPositive = statement[positive] !== undefined;
        const hasNegative = statement[negative] !== undefined;
        if (hasPositive && hasNegative) {
          ctx.addIssue({ code: 'custom', message: `a statement may have ${positive} or ${negative}, not both` });
        } else if (!hasPositive && !hasNegative) {
          ctx.addIssue({ code: 'custom', message: `a statement must have ${positive} or ${negative}` });
        }
      }
    },
    // Runs even when some fields failed, so every problem is reported at once; but only for objects.
    { when: (payload) => isPlainObject(payload.value) },
  );

const statementListSchema = z.union([statementSchema.transform((statement) => [statement]), z.array(statementSchema).min(1, 'Statement must not be an empty array')], {
  error: (issue) =>
    issue.input === undefined ? 'Statement is required' : 'Statement must be a statement object or a non-empty array of statement objects',
});

const documentSchema = z
  .strictObject(
    {
      Version: z
        .enum(POLICY_VERSIONS, { error: `Version must be ${POLICY_VERSIONS.map((version) => JSON.stringify(version)).join(' or ')}` })
        .optional(),
      Id: z.string({ error: 'Id must be a string' }).optional(),
      Statement: statementListSchema,
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')} in a policy document; ` +
            `allowed keys are ${DOCUMENT_KEYS.join(', ')}`
          : 'a policy document must be a JSON object',
    },
  )
  .superRefine((document, ctx) => {
    const seen = new Map<string, number>();
    document.Statement.forEach((statement, index) => {
      if (statement.Sid === undefined) return;
      const first = seen.get(statement.Sid);
      if (first === undefined) seen.set(statement.Sid, index);
      else ctx.addIssue({ code: 'custom', message: `duplicate Sid ${JSON.stringify(statement.Sid)} (also used by Statement[${first}])`, path: ['Statement', index, 'Sid'] });
    });
  });

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out;
}

/**
 * Flattens zod issues into `<path>: <message>` lines. A union whose input had the shape of exactly
 * one option (the others failed only on the type of the value itself) reports that option's
 * issues, so a bad field inside a single-object Statement is reported as precisely as in an array.
 */
function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const shaped = issue.errors.filter((branch) => !branch.some((inner) => inner.code === 'invalid_type' && inner.path.length === 0));
      if (shaped.length === 1 && shaped[0]) {
        lines.push(...describeIssues(shaped[0], path));
        continue;
      }
    }
    lines.push(`${formatPath(path) || '(document)'}: ${issue.message}`);
  }
  return lines;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates an IAM-style identity policy document: the parsed JSON value, or its JSON text.
 * Throws {@link PolicyError} listing every problem found, each with its path.
 */
export function parsePolicyDocument(json: unknown): PolicyDocument {
  let input = json;
  if (typeof json === 'string') {
    try {
      input = JSON.parse(json) as unknown;
    } catch (err) {
      throw new PolicyError(`policy document is not valid JSON: ${(err as Error).message}`);
    }
  }
  const result = documentSchema.safeParse(input);
  if (!result.success) {
    const problems = describeIssues(result.error.issues);
    throw new PolicyError(`invalid policy document:\n${problems.map((line) => `  ${line}`).join('\n')}`, problems);
  }
  const { Version, Id, Statement } = result.data;
  const statements = Statement.map((raw): PolicyStatement => {
    const base = { ...(raw.Sid !== undefined && { Sid: raw.Sid }), Effect: raw.Effect };
    // The refinement guarantees exactly one of each pair.
    const action: ActionClause = raw.Action ? { Action: raw.Action } : { NotAction: raw.NotAction ?? [] };
    const resource: ResourceClause = raw.Resource ? { Resource: raw.Resource } : { NotResource: raw.NotResource ?? [] };
    return { ...base, ...action, ...resource };
  });
  return deepFreeze({ ...(Version !== undefined && { Version }), ...(Id !== undefined && { Id }), Statement: statements });
}

// ---------------------------------------------------------------------------------------------
// Wildcard compilation

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

function segmentSource(segment: string): string {
  let out = '';
  for (const char of segment) out += char === '?' ? '.' : char.replace(REGEX_SPECIAL, '\\$&');
  return out;
}

/**
 * Compiles an IAM wildcard pattern to an anchored RegExp: `*` matches any run of characters
 * (including `/` and `:`), `?` exactly one character, everything else itself.
 *
 * The text between stars is matched at its leftmost possible position inside a lookahead whose
 * capture is then consumed (`(?=(.*?X))\1`, an atomic group), which is correct for globs (an
 * earlier placement of a middle segment never rules out a match) and keeps matching linear in
 * the number of segments instead of exponential backtracking on patterns such as `*a*a*a*b`.
 */
export function wildcardToRegExp(pattern: string, options: { caseInsensitive: boolean }): RegExp {
  const segments = pattern.split(/\*+/);
  const first = segments[0] ?? '';
  let source = `^${segmentSource(first)}`;
  if (segments.length === 2) {
    source += `.*${segmentSource(segments[1] ?? '')}`;
  } else if (segments.length > 2) {
    for (let i = 1; i < segments.length - 1; i++) source += `(?=(.*?${segmentSource(segments[i] ?? '')}))\\${i}`;
    source += `.*${segmentSource(segments[segments.length - 1] ?? '')}`;
  }
  source += '$';
  return new RegExp(source, options.caseInsensitive ? 'isu' : 'su');
}

type Matcher = (value: string) => boolean;
const matchAll: Matcher = () => true;

const PATTERN_CACHE_LIMIT = 4096;
const patternCache = new Map<string, Matcher>();

function compilePattern(pattern: string, caseInsensitive: boolean): Matcher {
  const key = `${caseInsensitive ? 'i' : 's'}${pattern}`;
  const cached = patternCache.get(key);
  if (cached) return cached;
  let matcher: Matcher;
  if (/^\*+$/.test(pattern)) matcher = matchAll;
  else {
    const regex = wildcardToRegExp(pattern, { caseInsensitive });
    matcher = (value) => regex.test(value);
  }
  if (patternCache.size >= PATTERN_CACHE_LIMIT) {
    const oldest = patternCache.keys().next();
    if (!oldest.done) patternCache.delete(oldest.value);
  }
  patternCache.set(key, matcher);
  return matcher;
}

interface CompiledStatement {
  readonly index: number;
  readonly statement: PolicyStatement;
  readonly deny: boolean;
  readonly actions: readonly Matcher[];
  readonly actionsNegated: boolean;
  readonly resources: readonly Matcher[];
  readonly resourcesNegated: boolean;
}

const compiledDocuments = new WeakMap<PolicyDocument, readonly CompiledStatement[]>();

function compileDocument(document: PolicyDocument): readonly CompiledStatement[] {
  const cached = compiledDocuments.get(document);
  if (cached) return cached;
  const compiled = document.Statement.map((statement, index): CompiledStatement => {
    const actionsNegated = statement.Action === undefined;
    const resourcesNegated = statement.Resource === undefined;
    const actions = (statement.Action ?? statement.NotAction ?? []).map((pattern) => compilePattern(pattern, true));
    const resources = (statement.Resource ?? statement.NotResource ?? []).map((pattern) => compilePattern(pattern, false));
    return { index, statement, deny: statement.Effect === 'Deny', actions, actionsNegated, resources, resourcesNegated };
  });
  compiledDocuments.set(document, compiled);
  return compiled;
}

function applies(statement: CompiledStatement, action: string, resource: string): boolean {
  const actionListed = statement.actions.some((match) => match(action));
  if (actionListed === statement.actionsNegated) return false;
  const resourceListed = statement.resources.some((match) => match(resource));
  return resourceListed !== statement.resourcesNegated;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const REQUEST_ACTION = /^[A-Za-z0-9-]+:[A-Za-z0-9_-]+$/;

/**
 * Evaluates identity policies for one request with IAM semantics: an explicit Deny in any
 * statement wins, then any Allow, else an implicit deny. Pure and synchronous.
 * Throws TypeError for a malformed request (a programming error, never a silent decision).
 */
export function authorize(documents: readonly PolicyDocument[], request: AuthorizationRequest): AuthorizationDecision {
  const { action, resource } = request;
  if (!REQUEST_ACTION.test(action)) throw new TypeError(`authorize: action must look like "<service>:<Action>", got ${JSON.stringify(action)}`);
  if (resource !== '*' && !resource.startsWith('arn:')) {
    throw new TypeError(`authorize: resource must be an ARN or "*", got ${JSON.stringify(resource)}`);
  }
  let allow: MatchedStatement | undefined;
  for (let documentIndex = 0; documentIndex < documents.length; documentIndex++) {
    const document = documents[documentIndex];
    if (!document) continue;
    for (const compiled of compileDocument(document)) {
      if (!compiled.deny && allow) continue; // already allowed: only a Deny can change the outcome now
      if (!applies(compiled, action, resource)) continue;
      const matched: MatchedStatement = { documentIndex, statementIndex: compiled.index, statement: compiled.statement };
      if (compiled.deny) return { allowed: false, reason: 'explicit-deny', statement: matched };
      allow = matched;
    }
  }
  return allow ? { allowed: true, reason: 'allowed', statement: allow } : { allowed: false, reason: 'implicit-deny' };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** `arn:aws:ecr:<region>:<account>:repository/<name>`. */
export function repositoryArn(region: string, accountId: string, repositoryName: string): string {
  if (!region || region.includes(':')) throw new TypeError(`repositoryArn: invalid region ${JSON.stringify(region)}`);
  if (!accountId || accountId.includes(':')) throw new TypeError(`repositoryArn: invalid account id ${JSON.stringify(accountId)}`);
  if (!repositoryName) throw new TypeError('repositoryArn: repository name must not be empty');
  return `arn:aws:ecr:${region}:${accountId}:repository/${repositoryName}`;
}

export interface DenialOptions {
  /** Who was denied, e.g. `arn:aws:iam::123456789012:user/alice`. Defaults to `anonymous`. */
  readonly principal?: string;
  /** Defaults to `implicit-deny`. */
  readonly reason?: DenialReason;
}

/**
 * The AccessDenied message AWS gives for an identity policy decision, e.g.
 * `User: <principal> is not authorized to perform: ecr:BatchGetImage on resource: <arn> because no identity-based policy allows the ecr:BatchGetImage action`.
 */
export function describeDenial(action: string, resource: string, options: DenialOptions = {}): string {
  const { principal = 'anonymous', reason = 'implicit-deny' } = options;
  const head = `User: ${principal} is not authorized to perform: ${action} on resource: ${resource}`;
  return reason === 'explicit-deny'
    ? `${head} with an explicit deny in an identity-based policy`
    : `${head} because no identity-based policy allows the ${action} action`;
}
