import type { IncomingMessage } from 'node:http';
import type { AccessControl } from '../auth/access-control.ts';
import type { IdentityService } from '../auth/identities.ts';
import type { LocalRegistry } from '../registry/local-registry.ts';
import type { Registry } from '../registry/registry.ts';
import type { CredentialStore } from '../secrets/credentials.ts';
import type { RequestHandler } from '../server/http-server.ts';
import type { MetadataStore } from '../storage/metadata-store.ts';
import type { AccessCheck } from './access.ts';
import type { AwsIdentity } from './context.ts';
import { AwsError } from './errors.ts';
import { imageOperations } from './images.ts';
import { lifecyclePreviewOperations } from './lifecycle-preview.ts';
import type { LifecycleRunner } from '../policy/lifecycle-runner.ts';
import { createAwsJsonApi } from './json-protocol.ts';
import { pullThroughRuleOperations } from './pull-through-rules.ts';
import { repositoryOperations } from './repositories.ts';
import { secretsManagerOperations } from './secrets-manager.ts';
import { templateOperations } from './templates.ts';

export interface EcrApiOptions {
  aws: AwsIdentity;
  metadata: MetadataStore;
  registry: Registry;
  local: LocalRegistry;
  identities: IdentityService;
  credentials: CredentialStore;
  accessControl: AccessControl;
  allowedUpstreams: string[];
  reloadRules: () => Promise<void>;
  lifecycle: LifecycleRunner;
  validateRule: (prefix: string) => Promise<string | undefined>;
  publicUrl: () => string;
  now: () => Date;
  onInternalError: (err: unknown, req: IncomingMessage) => void;
}

/** ECR's API and the Secrets Manager subset, both at `POST /`, told apart by X-Amz-Target. */
export function createEcrApi(options: EcrApiOptions): RequestHandler {
  const { aws, metadata, now } = options;
  const access: AccessCheck = async (principal, action, resource) => {
    const denial = options.accessControl.denial(principal, action, resource);
    if (denial) throw new AwsError('AccessDeniedException', denial);
  };
  const isAllowedUpstream = (url: URL) =>
    options.allowedUpstreams.some((pattern) => {
      const host = url.host.toLowerCase();
      return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern.toLowerCase();
    });
  return createAwsJsonApi({
    region: aws.region,
    now,
    secretFor: (id) => options.identities.secretFor(id),
    principalForKey: (id) => options.identities.principalForKey(id),
    onInternalError: options.onInternalError,
    services: [
      {
        targetPrefix: 'AmazonEC2ContainerRegistry_V20150921',
        signingName: 'ecr',
        operations: {
          ...pullThroughRuleOperations({ aws, metadata, credentials: options.credentials, access, isAllowedUpstream, reloadRules: options.reloadRules, validate: options.validateRule, now }),
          ...templateOperations({ aws, metadata, access, now }),
          ...repositoryOperations({ aws, metadata, local: options.local, identities: options.identities, access, publicUrl: options.publicUrl, now }),
          ...imageOperations({ aws, metadata, registry: options.registry, access, publicUrl: options.publicUrl }),
          ...lifecyclePreviewOperations({ aws, metadata, runner: options.lifecycle, access }),
        },
      },
      {
        targetPrefix: 'secretsmanager',
        signingName: 'secretsmanager',
        operations: secretsManagerOperations({ aws, metadata, credentials: options.credentials, access, now }),
      },
    ],
  });
}
