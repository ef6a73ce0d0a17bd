import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Express, Request } from 'express';
import { GraphQLError } from 'graphql';
import { Loaders, type Caller, type RequestContext } from '../graphql/context';
import type { Logger } from '../logging/logger';
import type { Services } from '../services';
import { authenticate, bearerToken } from './authentication';
import type { RunningOperations } from './socket-limits';

export interface ContextDependencies {
  orm: MikroORM;
  services: Services;
  logger: Logger;
}

function userAgentOf(request: IncomingMessage): string {
  const header = request.headers['user-agent'];
  return typeof header === 'string' ? header.slice(0, 300) : '';
}

/**
 * Returns a function that computes the client address of a request that
 * bypasses Express, such as a WebSocket upgrade, exactly as Express computes
 * `request.ip` on HTTP: from the socket address and X-Forwarded-For, with the
 * app's `trust proxy` setting applied.
 */
export function clientAddressOf(app: Express): (request: IncomingMessage) => string {
  return (request) => {
    // Express's `ip` getter reads `headers`, `socket` and `app` from the
    // request object, and `app.request` carries the app.
    const view: Request = Object.create(app.request, {
      headers: { value: request.headers },
      socket: { value: request.socket },
    });
    return view.ip ?? '';
  };
}

/** Builds the context of an HTTP GraphQL request, authenticating its bearer token. */
export async function httpContext(
  request: Request,
  dependencies: ContextDependencies,
): Promise<RequestContext> {
  const em = dependencies.orm.em.fork();
  const requestId = String((request as { id?: string }).id ?? randomUUID());
  let caller: Caller;
  try {
    caller = await authenticate(
      em,
      dependencies.services,
      bearerToken(request.headers.authorization),
    );
  } catch (error) {
    if (error instanceof GraphQLError) throw error;
    // Apollo's plugins do not run for a request whose context failed, so the
    // error is logged here, once, and returned with its request id.
    dependencies.logger.error({ err: error, requestId }, 'authenticating a request failed');
    throw new GraphQLError('Internal server error', {
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId, http: { status: 500 } },
    });
  }
  return {
    requestId,
    logger: dependencies.logger.child({ requestId }),
    em,
    caller,
    loaders: new Loaders(),
    services: dependencies.services,
    ip: request.ip ?? '',
    userAgent: userAgentOf(request),
  };
}

/** The caller and client of a graphql-ws connection, fixed at connection_init. */
export type ConnectionState = Record<PropertyKey, unknown> & {
  caller?: Caller;
  /** The bearer token of connection_init, checked again for every operation. */
  token?: string;
  ip?: string;
  userAgent?: string;
  /** Releases the connection's place in its caller's count when it closes. */
  releaseSocket?: () => void;
  /** The operations running on the connection, set once it is accepted. */
  operations?: RunningOperations;
};

/**
 * Authenticates a graphql-ws connection from the `authorization` of its
 * connection_init payload. `ip` is the client address of the upgrade request.
 */
export async function connectionState(
  connectionParams: Record<string, unknown> | undefined,
  request: IncomingMessage,
  ip: string,
  dependencies: ContextDependencies,
): Promise<ConnectionState> {
  const raw = connectionParams?.authorization ?? connectionParams?.Authorization;
  const token = bearerToken(raw);
  const caller = await authenticate(dependencies.orm.em.fork(), dependencies.services, token);
  return { caller, token, ip, userAgent: userAgentOf(request) };
}

/**
 * Builds the context of one graphql-ws operation, with an EntityManager of
 * its own. The connection's token is verified again, so a key revoked or a
 * session ended since connection_init fails with UNAUTHENTICATED.
 */
export async function wsContext(
  state: ConnectionState,
  dependencies: ContextDependencies,
): Promise<RequestContext> {
  const requestId = randomUUID();
  const em = dependencies.orm.em.fork();
  const caller = await authenticate(em, dependencies.services, state.token);
  return {
    requestId,
    logger: dependencies.logger.child({ requestId, transport: 'ws' }),
    em,
    caller,
    loaders: new Loaders(),
    services: dependencies.services,
    ip: state.ip ?? '',
    userAgent: state.userAgent ?? '',
  };
}
