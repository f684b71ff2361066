import type { Principal } from './identities.ts';
import { authorize, describeDenial, parsePolicyDocument, type PolicyDocument } from './permissions.ts';

/**
 * The only place that decides allow or deny: a principal's IAM-style policy documents against an action
 * and a resource ARN. Returns undefined when allowed, else the denial message (naming the permission).
 */
export class AccessControl {
  /** Parsed documents by policy text: principals are loaded per request, policies rarely change. */
  private readonly parsed = new Map<string, PolicyDocument[]>();

  constructor(private readonly accountId: string) {}

  denial(principal: Principal, action: string, resource: string): string | undefined {
    const key = JSON.stringify(principal.policy);
    let documents = this.parsed.get(key);
    if (!documents) {
      documents = principal.policy.map((document) => parsePolicyDocument(document));
      if (this.parsed.size > 1000) this.parsed.clear();
      this.parsed.set(key, documents);
    }
    const decision = authorize(documents, { action, resource });
    if (decision.allowed) return undefined;
    return describeDenial(action, resource, {
      principal: `arn:aws:iam::${this.accountId}:user/${principal.name}`,
      reason: decision.reason === 'explicit-deny' ? 'explicit-deny' : 'implicit-deny',
    });
  }
}
