import type { Principal } from '../auth/identities.ts';

/** Throws AccessDeniedException naming the missing permission unless `principal` may do `action` on `resource`. */
export type AccessCheck = (principal: Principal, action: string, resource: string) => Promise<void>;
