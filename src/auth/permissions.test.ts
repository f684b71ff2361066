import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  authorize,
  describeDenial,
  parsePolicyDocument,
  PolicyError,
  repositoryArn,
  wildcardToRegExp,
  type AuthorizationDecision,
  type PolicyDocument,
} from './permissions.ts';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const arn = (name: string) => repositoryArn(REGION, ACCOUNT, name);
const REPOS = `arn:aws:ecr:${REGION}:${ACCOUNT}:repository`;

const policy = (...statements: unknown[]): PolicyDocument => parsePolicyDocument({ Version: '2012-10-17', Statement: statements });
const allow = (action: string | string[], resource: string | string[]) => ({ Effect: 'Allow', Action: action, Resource: resource });
const deny = (action: string | string[], resource: string | string[]) => ({ Effect: 'Deny', Action: action, Resource: resource });

function decide(documents: PolicyDocument | PolicyDocument[], action: string, resource: string): AuthorizationDecision {
  return authorize(Array.isArray(documents) ? documents : [documents], { action, resource });
}
const allowed = (documents: PolicyDocument | PolicyDocument[], action: string, resource: string) => decide(documents, action, resource).allowed;

/** Asserts that parsing fails, and that one reported issue matches each expected pattern. */
function rejects(input: unknown, ...expected: RegExp[]): PolicyError {
  let caught: unknown;
  try {
    parsePolicyDocument(input);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PolicyError, `expected a PolicyError for ${JSON.stringify(input)}`);
  for (const pattern of expected) {
    const issue = caught.issues.find((candidate) => pattern.test(candidate));
    assert.ok(issue, `no issue matches ${pattern}; issues were:\n${caught.issues.join('\n')}`);
    assert.ok(caught.message.includes(issue), 'the message lists every issue');
  }
  return caught;
}

const EXAMPLE = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
      Resource: `${REPOS}/dockerhub/*`,
    },
    { Effect: 'Deny', Action: 'ecr:*', Resource: `${REPOS}/secret/*` },
  ],
};

describe('parsePolicyDocument', () => {
  test('accepts the documented example and normalises strings to arrays', () => {
    const document = parsePolicyDocument(EXAMPLE);
    assert.deepEqual(document, {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          Resource: [`${REPOS}/dockerhub/*`],
        },
        { Effect: 'Deny', Action: ['ecr:*'], Resource: [`${REPOS}/secret/*`] },
      ],
    });
  });

  test('accepts JSON text, a single statement object, no Version, Sid, Id, NotAction and NotResource', () => {
    const document = parsePolicyDocument(
      JSON.stringify({ Id: 'pull-only', Statement: { Sid: 'Pull1', Effect: 'Allow', NotAction: 'ecr:Delete*', NotResource: [`${REPOS}/secret/*`] } }),
    );
    assert.deepEqual(document, {
      Id: 'pull-only',
      Statement: [{ Sid: 'Pull1', Effect: 'Allow', NotAction: ['ecr:Delete*'], NotResource: [`${REPOS}/secret/*`] }],
    });
    assert.equal(parsePolicyDocument({ Version: '2008-10-17', Statement: allow('*', '*') }).Version, '2008-10-17');
  });

  test('returns a deeply frozen document, so the compiled-pattern cache cannot go stale', () => {
    const document = parsePolicyDocument(EXAMPLE);
    assert.ok(Object.isFrozen(document));
    assert.ok(Object.isFrozen(document.Statement));
    assert.ok(Object.isFrozen(document.Statement[0]));
    assert.ok(Object.isFrozen(document.Statement[0]?.Action));
  });

  test('does not alias or mutate its input', () => {
    const input = structuredClone(EXAMPLE);
    parsePolicyDocument(input);
    assert.deepEqual(input, EXAMPLE);
    assert.ok(!Object.isFrozen(input.Statement));
  });

  describe('rejects malformed documents with a clear message', () => {
    test('not JSON / not an object', () => {
      rejects('{"Statement": ', /not valid JSON/);
      rejects(null, /^\(document\): a policy document must be a JSON object$/);
      rejects([EXAMPLE], /a policy document must be a JSON object/);
      rejects(42, /a policy document must be a JSON object/);
    });

    test('Statement missing, empty or of the wrong type', () => {
      rejects({ Version: '2012-10-17' }, /^Statement: Statement is required$/);
      rejects({ Statement: [] }, /^Statement: Statement must not be an empty array$/);
      rejects({ Statement: 'Allow everything' }, /^Statement: Statement must be a statement object or a non-empty array/);
      rejects({ Statement: [allow('*', '*'), 'x'] }, /^Statement\[1\]: each statement must be a JSON object$/);
    });

    test('bad Version', () => {
      rejects({ Version: '2012-10-18', Statement: allow('*', '*') }, /^Version: Version must be "2012-10-17" or "2008-10-17"$/);
      rejects({ Version: 2012, Statement: allow('*', '*') }, /^Version: Version must be/);
    });

    test('unknown keys, in the document and in a statement', () => {
      rejects({ Statement: allow('*', '*'), Statment: [] }, /^\(document\): unknown key "Statment" in a policy document; allowed keys are Version, Id, Statement$/);
      rejects(
        { Statement: [{ ...allow('*', '*'), Efect: 'Allow', Resources: '*' }] },
        /^Statement\[0\]: unknown keys "Efect", "Resources" in a policy statement; allowed keys are Sid, Effect, Action, NotAction, Resource, NotResource$/,
      );
    });

    test('Condition is not supported, and says so', () => {
      const error = rejects(
        { Statement: [{ ...allow('ecr:*', '*'), Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } } }] },
        /^Statement\[0\]\.Condition: Condition is not supported by Cistern policies/,
      );
      assert.equal(error.issues.length, 1);
    });

    test('Principal and NotPrincipal do not belong in identity policies', () => {
      rejects({ Statement: { ...allow('*', '*'), Principal: '*' } }, /^Statement\.Principal: Principal is not allowed in an identity-based policy/);
      rejects({ Statement: { ...allow('*', '*'), NotPrincipal: { AWS: '*' } } }, /^Statement\.NotPrincipal: NotPrincipal is not allowed/);
    });

    test('Effect missing or misspelt (it is case-sensitive)', () => {
      rejects({ Statement: { Action: '*', Resource: '*' } }, /^Statement\.Effect: Effect is required$/);
      rejects({ Statement: { Effect: 'allow', Action: '*', Resource: '*' } }, /^Statement\.Effect: Effect must be "Allow" or "Deny" \(case-sensitive\)$/);
    });

    test('Action / NotAction: exactly one, of the right shape', () => {
      rejects({ Statement: { Effect: 'Allow', Resource: '*' } }, /^Statement: a statement must have Action or NotAction$/);
      rejects({ Statement: { Effect: 'Allow', Action: '*', NotAction: 'ecr:Delete*', Resource: '*' } }, /^Statement: a statement may have Action or NotAction, not both$/);
      rejects({ Statement: allow([], '*') }, /^Statement\.Action: Action must not be an empty array$/);
      rejects({ Statement: allow(7 as unknown as string, '*') }, /^Statement\.Action: Action must be a string or a non-empty array of strings$/);
      rejects({ Statement: allow(['ecr:BatchGetImage', 7] as unknown as string[], '*') }, /^Statement\.Action\[1\]: each Action must be a string$/);
      rejects({ Statement: allow('BatchGetImage', '*') }, /^Statement\.Action: "BatchGetImage" is not a valid action: expected "\*" or "<service>:<action>"/);
      rejects({ Statement: allow(['ecr:BatchGetImage', 'ecr:'], '*') }, /^Statement\.Action\[1\]: "ecr:" is not a valid action/);
      rejects({ Statement: allow('ecr:Batch Get', '*') }, /"ecr:Batch Get" is not a valid action/);
      rejects({ Statement: { Effect: 'Deny', NotAction: '', Resource: '*' } }, /^Statement\.NotAction: "" is not a valid action/);
    });

    test('Resource / NotResource: exactly one, ARN or *', () => {
      rejects({ Statement: { Effect: 'Allow', Action: '*' } }, /^Statement: a statement must have Resource or NotResource$/);
      rejects({ Statement: { ...allow('*', '*'), NotResource: 'arn:aws:ecr:*' } }, /^Statement: a statement may have Resource or NotResource, not both$/);
      rejects({ Statement: allow('*', 'repository/dockerhub/*') }, /^Statement\.Resource: "repository\/dockerhub\/\*" is not a valid resource: expected "\*" or an ARN/);
      rejects({ Statement: allow('*', ['*', '']) }, /^Statement\.Resource\[1\]: "" is not a valid resource/);
      rejects({ Statement: allow('*', 'arn:') }, /"arn:" is not a valid resource/);
      rejects({ Statement: allow('*', `ARN:aws:ecr:${REGION}:${ACCOUNT}:repository/*`) }, /"ARN:aws:ecr:.*" is not a valid resource/);
      rejects({ Statement: allow('*', { arn: '*' } as unknown as string) }, /^Statement\.Resource: Resource must be a string or a non-empty array of strings$/);
      rejects({ Statement: allow('*', `${REPOS}/\${aws:username}/*`) }, /policy variables such as \$\{aws:username\} are not supported/);
    });

    test('Sid: letters and digits, unique within the document', () => {
      rejects({ Statement: { Sid: 'pull images', ...allow('*', '*') } }, /^Statement\.Sid: Sid must be a non-empty string of ASCII letters and digits$/);
      rejects({ Statement: { Sid: 3, ...allow('*', '*') } }, /^Statement\.Sid: Sid must be a string$/);
      rejects(
        { Statement: [{ Sid: 'Pull', ...allow('*', '*') }, { Sid: 'Push', ...allow('*', '*') }, { Sid: 'Pull', ...deny('*', '*') }] },
        /^Statement\[2\]\.Sid: duplicate Sid "Pull" \(also used by Statement\[0\]\)$/,
      );
    });

    test('every problem is reported at once, each with its own path', () => {
      const error = rejects(
        {
          Version: '1',
          Statement: [
            { Effect: 'Permit', Action: 'ecr:*' },
            { Effect: 'Allow', Action: 'ecr:*', Resource: '*', Condition: {} },
          ],
        },
        /^Version: /,
        /^Statement\[0\]\.Effect: /,
        /^Statement\[0\]: a statement must have Resource or NotResource$/,
        /^Statement\[1\]\.Condition: /,
      );
      assert.equal(error.issues.length, 4);
      assert.match(error.message, /^invalid policy document:\n {2}Version: /);
    });
  });
});

describe('authorize', () => {
  const example = parsePolicyDocument(EXAMPLE);

  test('the documented example', () => {
    assert.deepEqual(decide(example, 'ecr:BatchGetImage', arn('dockerhub/library/nginx')), {
      allowed: true,
      reason: 'allowed',
      statement: { documentIndex: 0, statementIndex: 0, statement: example.Statement[0] },
    });
    assert.equal(allowed(example, 'ecr:GetDownloadUrlForLayer', arn('dockerhub/nginx')), true);
    assert.deepEqual(decide(example, 'ecr:PutImage', arn('dockerhub/nginx')), { allowed: false, reason: 'implicit-deny' });
    assert.deepEqual(decide(example, 'ecr:BatchGetImage', arn('secret/keys')), {
      allowed: false,
      reason: 'explicit-deny',
      statement: { documentIndex: 0, statementIndex: 1, statement: example.Statement[1] },
    });
    assert.equal(decide(example, 'ecr:BatchGetImage', arn('ghcr/owner/tool')).reason, 'implicit-deny');
  });

  test('default deny: no documents, no statements that match', () => {
    assert.deepEqual(decide([], 'ecr:BatchGetImage', arn('a')), { allowed: false, reason: 'implicit-deny' });
    assert.equal(decide(policy(allow('ecr:PutImage', arn('a'))), 'ecr:BatchGetImage', arn('a')).reason, 'implicit-deny');
    assert.equal(decide(policy(allow('ecr:BatchGetImage', arn('b'))), 'ecr:BatchGetImage', arn('a')).reason, 'implicit-deny');
    assert.equal(decide(policy(deny('ecr:BatchGetImage', arn('a'))), 'ecr:BatchGetImage', arn('a')).reason, 'explicit-deny');
    assert.equal(decide(policy(deny('ecr:*', '*')), 'ecr:BatchGetImage', arn('b')).reason, 'explicit-deny');
  });

  test('exact action and resource', () => {
    const document = policy(allow('ecr:BatchGetImage', arn('team/app')));
    assert.equal(allowed(document, 'ecr:BatchGetImage', arn('team/app')), true);
    assert.equal(allowed(document, 'ecr:BatchGetImageX', arn('team/app')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImag', arn('team/app')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImage', arn('team/app/sub')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImage', arn('team/ap')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImage', arn('xteam/app')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImage', repositoryArn('us-west-2', ACCOUNT, 'team/app')), false);
    assert.equal(allowed(document, 'ecr:BatchGetImage', repositoryArn(REGION, '210987654321', 'team/app')), false);
  });

  test('action wildcards: *, service:*, prefix*, ?', () => {
    const everything = policy(allow('*', '*'));
    assert.equal(allowed(everything, 'ecr:DeleteRepository', arn('x')), true);
    assert.equal(allowed(everything, 's3:GetObject', '*'), true);

    const ecr = policy(allow('ecr:*', '*'));
    assert.equal(allowed(ecr, 'ecr:PutImage', arn('x')), true);
    assert.equal(allowed(ecr, 'ecr-public:PutImage', arn('x')), false, 'ecr:* must not match another service sharing the prefix');
    assert.equal(allowed(ecr, 's3:GetObject', '*'), false);

    const batch = policy(allow('ecr:Batch*', '*'));
    assert.equal(allowed(batch, 'ecr:BatchGetImage', arn('x')), true);
    assert.equal(allowed(batch, 'ecr:BatchDeleteImage', arn('x')), true);
    assert.equal(allowed(batch, 'ecr:Batch', arn('x')), true, '* also matches nothing');
    assert.equal(allowed(batch, 'ecr:GetBatchThing', arn('x')), false);
    assert.equal(allowed(batch, 'ecr:PutImage', arn('x')), false);

    const middle = policy(allow('ecr:*Image*', '*'));
    assert.equal(allowed(middle, 'ecr:BatchGetImage', arn('x')), true);
    assert.equal(allowed(middle, 'ecr:DescribeImages', arn('x')), true);
    assert.equal(allowed(middle, 'ecr:ListTagsForResource', arn('x')), false);

    const single = policy(allow('ecr:?etAuthorizationToken', '*'));
    assert.equal(allowed(single, 'ecr:GetAuthorizationToken', '*'), true);
    assert.equal(allowed(single, 'ecr:etAuthorizationToken', '*'), false, '? matches exactly one character, not zero');
    assert.equal(allowed(single, 'ecr:GGetAuthorizationToken', '*'), false, '? matches exactly one character, not two');

    const anyService = policy(allow('*:Describe*', '*'));
    assert.equal(allowed(anyService, 'ecr:DescribeImages', arn('x')), true);
    assert.equal(allowed(anyService, 'ecr:ListImages', arn('x')), false);
  });

  test('actions match case-insensitively, service prefix and name alike', () => {
    const document = policy(allow(['ECR:batchgetimage', 'Ecr:get*'], '*'));
    assert.equal(allowed(document, 'ecr:BatchGetImage', arn('x')), true);
    assert.equal(allowed(document, 'ECR:BATCHGETIMAGE', arn('x')), true);
    assert.equal(allowed(document, 'ecr:GetDownloadUrlForLayer', arn('x')), true);
    assert.equal(allowed(document, 'eCr:gEtAuthorizationToken', '*'), true);
    assert.equal(decide(policy(deny('ECR:DELETE*', '*'), allow('*', '*')), 'ecr:DeleteRepository', arn('x')).reason, 'explicit-deny');
  });

  test('resources match case-sensitively', () => {
    const document = policy(allow('ecr:*', arn('Team/*')));
    assert.equal(allowed(document, 'ecr:PutImage', arn('Team/app')), true);
    assert.equal(allowed(document, 'ecr:PutImage', arn('team/app')), false);
    assert.equal(allowed(policy(allow('ecr:*', `arn:aws:ECR:${REGION}:${ACCOUNT}:repository/*`)), 'ecr:PutImage', arn('a')), false);
    // A Deny is just as literal: callers must normalise names (ECR repository names are lowercase).
    assert.equal(decide(policy(allow('ecr:*', '*'), deny('ecr:*', arn('secret/*'))), 'ecr:PutImage', arn('Secret/x')).reason, 'allowed');
  });

  test('resource *: matches any characters, including / and :, and nothing', () => {
    const nested = policy(allow('ecr:*', arn('dockerhub/*')));
    assert.equal(allowed(nested, 'ecr:PutImage', arn('dockerhub/library/nginx')), true, '* spans /');
    assert.equal(allowed(nested, 'ecr:PutImage', arn('dockerhub/')), true);
    assert.equal(allowed(nested, 'ecr:PutImage', arn('dockerhub')), false);
    assert.equal(allowed(nested, 'ecr:PutImage', arn('dockerhubx/nginx')), false);

    const anyRegion = policy(allow('ecr:*', `arn:aws:ecr:*:${ACCOUNT}:repository/*`));
    assert.equal(allowed(anyRegion, 'ecr:PutImage', repositoryArn('eu-west-1', ACCOUNT, 'a/b')), true);
    assert.equal(allowed(anyRegion, 'ecr:PutImage', repositoryArn('eu-west-1', '210987654321', 'a/b')), false);

    const interior = policy(allow('ecr:*', arn('team-*-prod/*')));
    assert.equal(allowed(interior, 'ecr:PutImage', arn('team-a-prod/api')), true);
    assert.equal(allowed(interior, 'ecr:PutImage', arn('team-a/b-prod/api')), true);
    assert.equal(allowed(interior, 'ecr:PutImage', arn('team-a-dev/api')), false);

    const everyResource = policy(allow('ecr:*', 'arn:*'));
    assert.equal(allowed(everyResource, 'ecr:PutImage', arn('x')), true);
    assert.equal(allowed(everyResource, 'ecr:GetAuthorizationToken', '*'), false, 'arn:* is not the account-level "*"');
  });

  test('resource ?: exactly one character', () => {
    const document = policy(allow('ecr:*', arn('app-v?')));
    assert.equal(allowed(document, 'ecr:PutImage', arn('app-v1')), true);
    assert.equal(allowed(document, 'ecr:PutImage', arn('app-v2')), true);
    assert.equal(allowed(document, 'ecr:PutImage', arn('app-v')), false);
    assert.equal(allowed(document, 'ecr:PutImage', arn('app-v10')), false);
    assert.equal(allowed(policy(allow('ecr:*', arn('a?b'))), 'ecr:PutImage', arn('a/b')), true, '? matches / too');
  });

  test('regex metacharacters in patterns are literal', () => {
    const dotted = policy(allow('ecr:*', arn('my.app')));
    assert.equal(allowed(dotted, 'ecr:PutImage', arn('my.app')), true);
    assert.equal(allowed(dotted, 'ecr:PutImage', arn('myxapp')), false, '. must not act as a wildcard');
    assert.equal(allowed(dotted, 'ecr:PutImage', arn('my/app')), false);

    const denyDotted = policy(allow('ecr:*', '*'), deny('ecr:*', arn('internal.tools/*')));
    assert.equal(decide(denyDotted, 'ecr:PutImage', arn('internal.tools/ci')).reason, 'explicit-deny');
    assert.equal(decide(denyDotted, 'ecr:PutImage', arn('internalxtools/ci')).reason, 'allowed');

    for (const name of ['a+b', 'a(b)', 'a[b]', 'a{2}', 'a|b', 'a^b', 'a$b', 'a\\b', 'a/b.c', 'a.*b', '(?:x)']) {
      const document = policy(allow('ecr:*', arn(name)));
      assert.equal(allowed(document, 'ecr:PutImage', arn(name)), true, `${name} matches itself`);
    }
    assert.equal(allowed(policy(allow('ecr:*', arn('a+b'))), 'ecr:PutImage', arn('aab')), false);
    assert.equal(allowed(policy(allow('ecr:*', arn('a|b'))), 'ecr:PutImage', arn('a')), false);
    assert.equal(allowed(policy(allow('ecr:*', arn('a.*b'))), 'ecr:PutImage', arn('axyzb')), false, 'only * is a wildcard; .* is a literal "." then *');
    assert.equal(allowed(policy(allow('ecr:*', arn('a.*b'))), 'ecr:PutImage', arn('a.b')), true);
    assert.equal(allowed(policy(allow('ecr:*', arn('[ab]'))), 'ecr:PutImage', arn('a')), false);
  });

  test('explicit Deny wins over Allow, whatever the order, within and across documents', () => {
    const allowAll = allow('ecr:*', '*');
    const denySecret = { Sid: 'NoSecrets', ...deny('ecr:*', arn('secret/*')) };
    for (const statements of [
      [allowAll, denySecret],
      [denySecret, allowAll],
    ]) {
      assert.equal(decide(policy(...statements), 'ecr:BatchGetImage', arn('secret/x')).reason, 'explicit-deny');
      assert.equal(decide(policy(...statements), 'ecr:BatchGetImage', arn('public/x')).reason, 'allowed');
    }
    const decision = decide([policy(allowAll), policy(allow('ecr:BatchGetImage', arn('secret/x')), denySecret)], 'ecr:BatchGetImage', arn('secret/x'));
    assert.equal(decision.reason, 'explicit-deny');
    assert.equal(decision.statement?.documentIndex, 1);
    assert.equal(decision.statement?.statementIndex, 1);
    assert.equal(decision.statement?.statement.Sid, 'NoSecrets');
    // The Deny only covers what it names.
    assert.equal(decide([policy(denySecret), policy(allowAll)], 'ecr:BatchGetImage', arn('secretive')).reason, 'allowed');
  });

  test('an allow reports the first matching Allow statement', () => {
    const decision = decide([policy(allow('ecr:PutImage', '*')), policy(allow('ecr:Get*', '*'), { Sid: 'Second', ...allow('ecr:*', '*') })], 'ecr:GetAuthorizationToken', '*');
    assert.equal(decision.reason, 'allowed');
    assert.deepEqual([decision.statement?.documentIndex, decision.statement?.statementIndex], [1, 0]);
  });

  test('NotAction: the statement applies to every action not listed', () => {
    const readOnly = policy({ Effect: 'Allow', NotAction: ['ecr:Put*', 'ecr:Delete*', 'ecr:BatchDeleteImage'], Resource: '*' });
    assert.equal(allowed(readOnly, 'ecr:BatchGetImage', arn('x')), true);
    assert.equal(allowed(readOnly, 'ecr:GetAuthorizationToken', '*'), true);
    assert.equal(decide(readOnly, 'ecr:PutImage', arn('x')).reason, 'implicit-deny', 'Allow+NotAction does not deny the listed actions, it just does not allow them');
    assert.equal(decide(readOnly, 'ECR:deleterepository', arn('x')).reason, 'implicit-deny', 'NotAction matches case-insensitively');
    assert.equal(decide(readOnly, 'ecr:BatchDeleteImage', arn('x')).reason, 'implicit-deny');

    const onlyPulls = policy(allow('*', '*'), { Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken'], Resource: '*' });
    assert.equal(decide(onlyPulls, 'ecr:BatchGetImage', arn('x')).reason, 'allowed');
    assert.equal(decide(onlyPulls, 'ecr:PutImage', arn('x')).reason, 'explicit-deny');
    assert.equal(decide(onlyPulls, 's3:GetObject', '*').reason, 'explicit-deny');
  });

  test('NotResource: the statement applies to every resource not listed', () => {
    const outsideTeam = policy(allow('ecr:*', '*'), { Effect: 'Deny', Action: 'ecr:Put*', NotResource: [arn('team/*'), arn('sandbox')] });
    assert.equal(decide(outsideTeam, 'ecr:PutImage', arn('team/api')).reason, 'allowed');
    assert.equal(decide(outsideTeam, 'ecr:PutImage', arn('sandbox')).reason, 'allowed');
    assert.equal(decide(outsideTeam, 'ecr:PutImage', arn('sandbox2')).reason, 'explicit-deny');
    assert.equal(decide(outsideTeam, 'ecr:PutImage', arn('other/api')).reason, 'explicit-deny');
    assert.equal(decide(outsideTeam, 'ecr:BatchGetImage', arn('other/api')).reason, 'allowed', 'the action must match too');

    const allowElsewhere = policy({ Effect: 'Allow', Action: 'ecr:*', NotResource: arn('secret/*') });
    assert.equal(allowed(allowElsewhere, 'ecr:PutImage', arn('public/x')), true);
    assert.equal(decide(allowElsewhere, 'ecr:PutImage', arn('secret/x')).reason, 'implicit-deny');
    assert.equal(allowed(allowElsewhere, 'ecr:GetAuthorizationToken', '*'), true, 'the account-level "*" is not in the excluded list');

    const both = policy({ Effect: 'Allow', NotAction: 'ecr:Delete*', NotResource: arn('secret/*') });
    assert.equal(allowed(both, 'ecr:PutImage', arn('public/x')), true);
    assert.equal(allowed(both, 'ecr:DeleteRepository', arn('public/x')), false);
    assert.equal(allowed(both, 'ecr:PutImage', arn('secret/x')), false);
  });

  test('account-level actions use the resource "*"', () => {
    const token = policy(allow('ecr:GetAuthorizationToken', '*'));
    assert.equal(allowed(token, 'ecr:GetAuthorizationToken', '*'), true);
    const repoScoped = policy(allow('ecr:*', `${REPOS}/*`));
    assert.equal(allowed(repoScoped, 'ecr:GetAuthorizationToken', '*'), false, 'a repository ARN pattern does not cover "*"');
    assert.equal(allowed(policy(allow('ecr:*', '*')), 'ecr:PutImage', arn('anything/at/all')), true, 'Resource "*" covers every ARN');
  });

  test('hand-built documents work too, and cached compilations are per document', () => {
    const document: PolicyDocument = { Statement: [{ Effect: 'Allow', Action: ['ecr:*'], Resource: [arn('a/*')] }] };
    assert.equal(allowed(document, 'ecr:PutImage', arn('a/b')), true);
    assert.equal(allowed(document, 'ecr:PutImage', arn('a/b')), true);
    const other: PolicyDocument = { Statement: [{ Effect: 'Allow', Action: ['ecr:*'], Resource: [arn('b/*')] }] };
    assert.equal(allowed(other, 'ecr:PutImage', arn('a/b')), false);
    assert.equal(allowed([other, document], 'ecr:PutImage', arn('a/b')), true);
  });

  test('a malformed request is a programming error, not a decision', () => {
    const everything = policy(allow('*', '*'));
    assert.throws(() => decide(everything, '', '*'), TypeError);
    assert.throws(() => decide(everything, 'BatchGetImage', '*'), /action must look like/);
    assert.throws(() => decide(everything, 'ecr:*', '*'), /action must look like/);
    assert.throws(() => decide(everything, 'ecr:BatchGetImage', ''), /resource must be an ARN or "\*"/);
    assert.throws(() => decide(everything, 'ecr:BatchGetImage', 'dockerhub/nginx'), /resource must be an ARN/);
  });

  test('pathological wildcard patterns stay linear (no catastrophic backtracking)', () => {
    const pattern = `${REPOS}/${'*a'.repeat(12)}*b`;
    const document = policy(allow('ecr:*', pattern), allow(`ecr:${'*a'.repeat(12)}*b`, '*'));
    const longName = arn('a'.repeat(4000));
    const started = performance.now();
    assert.equal(allowed(document, 'ecr:PutImage', longName), false);
    assert.equal(allowed(document, `ecr:${'A'.repeat(4000)}`, '*'), false);
    assert.equal(allowed(document, 'ecr:PutImage', `${longName}b`), true);
    assert.ok(performance.now() - started < 2000, 'matching took too long');
  });
});

describe('wildcardToRegExp', () => {
  /** Straightforward dynamic-programming glob matcher, the reference for the compiled RegExps. */
  function reference(pattern: string, value: string): boolean {
    const p = [...pattern];
    const v = [...value];
    let row = Array<boolean>(v.length + 1).fill(false);
    row[0] = true;
    for (const char of p) {
      const next = Array<boolean>(v.length + 1).fill(false);
      if (char === '*') {
        for (let j = 0; j <= v.length; j++) next[j] = (row[j] ?? false) || (j > 0 && (next[j - 1] ?? false));
      } else {
        for (let j = 1; j <= v.length; j++) next[j] = (row[j - 1] ?? false) && (char === '?' || char === v[j - 1]);
      }
      row = next;
    }
    return row[v.length] ?? false;
  }

  test('agrees with a reference glob matcher on random patterns', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = (alphabet: string, max: number) => Array.from({ length: random(max + 1) }, () => alphabet[random(alphabet.length)]).join('');
    for (let i = 0; i < 4000; i++) {
      const pattern = pick('ab*?.', 8);
      const regex = wildcardToRegExp(pattern, { caseInsensitive: false });
      for (let k = 0; k < 10; k++) {
        const value = pick('ab.', 10);
        assert.equal(regex.test(value), reference(pattern, value), `pattern ${JSON.stringify(pattern)} vs ${JSON.stringify(value)} (${regex})`);
      }
    }
  });

  test('case sensitivity is an option; the RegExp is anchored and stateless', () => {
    assert.equal(wildcardToRegExp('ecr:Get*', { caseInsensitive: true }).test('ECR:GETX'), true);
    assert.equal(wildcardToRegExp('ecr:Get*', { caseInsensitive: false }).test('ECR:GETX'), false);
    const regex = wildcardToRegExp('a*b*c', { caseInsensitive: false });
    assert.equal(regex.global || regex.sticky, false);
    assert.equal(regex.test('xabc'), false);
    assert.equal(regex.test('abcx'), false);
    assert.equal(regex.test('a-b-c'), true);
    assert.equal(regex.test('a-b-c'), true);
    assert.equal(wildcardToRegExp('a?c', { caseInsensitive: false }).test('a\nc'), true, '? matches any character, newline included');
  });
});

describe('helpers', () => {
  test('repositoryArn', () => {
    assert.equal(repositoryArn('us-east-1', '123456789012', 'dockerhub/library/nginx'), 'arn:aws:ecr:us-east-1:123456789012:repository/dockerhub/library/nginx');
    assert.throws(() => repositoryArn('', ACCOUNT, 'x'), /invalid region/);
    assert.throws(() => repositoryArn('us-east-1:evil', ACCOUNT, 'x'), /invalid region/);
    assert.throws(() => repositoryArn(REGION, '', 'x'), /invalid account id/);
    assert.throws(() => repositoryArn(REGION, ACCOUNT, ''), /must not be empty/);
  });

  test('describeDenial matches the AWS AccessDenied wording', () => {
    const resource = arn('dockerhub/library/nginx');
    assert.equal(
      describeDenial('ecr:BatchImportUpstreamImage', resource, { principal: 'arn:aws:iam::123456789012:user/ci' }),
      'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:BatchImportUpstreamImage on resource: ' +
        'arn:aws:ecr:us-east-1:123456789012:repository/dockerhub/library/nginx because no identity-based policy allows the ecr:BatchImportUpstreamImage action',
    );
    assert.equal(
      describeDenial('ecr:PutImage', resource, { principal: 'arn:aws:iam::123456789012:user/ci', reason: 'explicit-deny' }),
      'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:PutImage on resource: ' +
        'arn:aws:ecr:us-east-1:123456789012:repository/dockerhub/library/nginx with an explicit deny in an identity-based policy',
    );
    assert.match(describeDenial('ecr:GetAuthorizationToken', '*'), /^User: anonymous is not authorized to perform: ecr:GetAuthorizationToken on resource: \* because/);
  });

  test('describeDenial composes with authorize', () => {
    const decision = decide(parsePolicyDocument(EXAMPLE), 'ecr:PutImage', arn('secret/x'));
    assert.equal(decision.allowed, false);
    if (decision.allowed) return;
    assert.match(describeDenial('ecr:PutImage', arn('secret/x'), { principal: 'alice', reason: decision.reason }), /with an explicit deny in an identity-based policy$/);
  });
});
