import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logging/logger';
import type { MerchantCaller } from '../merchants/api-key.service';
import type { Services } from '../services';
import { forbidden, unauthenticated } from './errors';
import type { ApiKeyScope } from '../merchants/api-key.entity';
import type { SessionCaller } from '../members/session.service';

export type Caller =
  | { kind: 'anonymous' }
  | ({ kind: 'merchant' } & MerchantCaller)
  | ({ kind: 'member' } & SessionCaller);

/** Per-request DataLoaders, created on first use. */
export class Loaders {
  private readonly loaders = new Map<string, unknown>();

  get<T>(name: string, create: () => T): T {
    let loader = this.loaders.get(name) as T | undefined;
    if (!loader) {
      loader = create();
      this.loaders.set(name, loader);
    }
    return loader;
  }
}

/** Context of every resolver: the caller, a request-scoped EntityManager and the services. */
export interface RequestContext {
  requestId: string;
  logger: Logger;
  em: EntityManager;
  caller: Caller;
  loaders: Loaders;
  services: Services;
  /** Client address, for rate limits and the audit log. */
  ip: string;
  userAgent: string;
}

/** Returns the calling merchant, or throws UNAUTHENTICATED or FORBIDDEN. */
export function requireMerchant(context: RequestContext, scope: ApiKeyScope): MerchantCaller {
  const { caller } = context;
  if (caller.kind !== 'merchant') {
    throw unauthenticated('A merchant API key is required: send Authorization: Bearer mk_...');
  }
  if (!caller.scopes.includes(scope)) {
    throw forbidden(`This API key lacks the "${scope}" scope`);
  }
  return caller;
}

/** Returns the signed-in member, or throws UNAUTHENTICATED. */
export function requireMember(context: RequestContext): SessionCaller {
  const { caller } = context;
  if (caller.kind !== 'member') {
    throw unauthenticated('Sign in first: send Authorization: Bearer <session token>');
  }
  return caller;
}

/**
 * Returns the signed-in operator, or throws: UNAUTHENTICATED without a
 * session, FORBIDDEN for a member who is not an operator or an operator
 * without two-factor authentication, which operators must have.
 */
export function requireOperator(context: RequestContext): SessionCaller {
  const caller = requireMember(context);
  if (caller.role !== 'operator') throw forbidden('This operation is for operators');
  if (!caller.twoFactorEnabled) {
    throw forbidden(
      'Operators must turn on two-factor authentication before using operator operations',
    );
  }
  return caller;
}

/** The client's address and software, for sessions and the audit log. */
export function clientOf(context: RequestContext): { ip: string; userAgent: string } {
  return { ip: context.ip, userAgent: context.userAgent };
}
