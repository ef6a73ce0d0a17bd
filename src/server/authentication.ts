import { GraphQLError } from 'graphql';
import type { Caller } from '../graphql/context';
import { sqlFor } from '../database/sql';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Services } from '../services';
import { isApiKey } from '../merchants/api-key.service';

/** Reads the token of an `Authorization: Bearer <token>` value, or undefined when absent. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== 'string' || header.length === 0) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw invalidCredentials('Authorization must have the form "Bearer <token>"');
  return match[1];
}

function invalidCredentials(
  message = 'The bearer token is invalid, revoked or expired',
): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
  });
}

/**
 * Identifies the caller of a request. No token means an anonymous caller.
 * A token that does not verify fails the whole request, so that a client with
 * a revoked key learns it at once instead of getting anonymous responses.
 */
export async function authenticate(
  em: EntityManager,
  services: Services,
  token: string | undefined,
): Promise<Caller> {
  if (token === undefined) return { kind: 'anonymous' };
  if (isApiKey(token)) {
    const merchant = await services.apiKeys.verify(sqlFor(em), token);
    if (merchant) return { kind: 'merchant', ...merchant };
  } else {
    const member = await services.sessions.authenticate(sqlFor(em), token);
    if (member) return { kind: 'member', ...member };
  }
  throw invalidCredentials();
}
