import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { RequestContext } from '../graphql/context';
import { LIMIT_CODES } from './abuse-limits';

/** Error codes that are safe to show as they are: the client caused them. */
const CLIENT_ERROR_CODES = new Set([
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'TOO_MANY_OPERATIONS',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  ...Object.values(LIMIT_CODES),
]);

/**
 * Puts back the code of an operation limit, which Apollo replaces with
 * GRAPHQL_VALIDATION_FAILED when it wraps a validation error; the original
 * error, with the code, is kept as its originalError.
 */
export function restoreLimitCode(
  formatted: GraphQLFormattedError,
  error: unknown,
): GraphQLFormattedError {
  const original = (error as { originalError?: { extensions?: Record<string, unknown> } })
    .originalError;
  const code = original?.extensions?.code;
  if (typeof code === 'string' && LIMIT_CODE_SET.has(code)) {
    return { ...formatted, extensions: { ...formatted.extensions, code } };
  }
  return formatted;
}

const LIMIT_CODE_SET = new Set<string>(Object.values(LIMIT_CODES));

export function isClientError(error: GraphQLFormattedError): boolean {
  const code = error.extensions?.code;
  return typeof code === 'string' && CLIENT_ERROR_CODES.has(code);
}

/**
 * Replaces every error that the client did not cause with a generic message,
 * so that no stack, SQL or secret reaches a client. The original is logged by
 * errorLoggingPlugin. Used as Apollo's formatError and for graphql-ws.
 */
export function maskError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (isClientError(formatted)) {
    const { extensions } = formatted;
    // Apollo adds a stack trace only when configured to; drop it regardless.
    const { stacktrace: _stacktrace, ...safe } = extensions ?? {};
    return { ...formatted, extensions: safe };
  }
  // A request id set where the error was logged is kept, so that support can find the log line.
  const requestId = formatted.extensions?.requestId;
  return {
    message: 'Internal server error',
    locations: formatted.locations,
    path: formatted.path,
    extensions: {
      code: 'INTERNAL_SERVER_ERROR',
      ...(typeof requestId === 'string' ? { requestId } : {}),
    },
  };
}

/** Logs each unexpected error of a request once, with the request id and the operation. */
export function errorLoggingPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors, operationName }) {
          for (const error of errors) {
            const code = error.extensions?.code;
            if (typeof code === 'string' && CLIENT_ERROR_CODES.has(code)) continue;
            contextValue.logger.error(
              { err: unwrapResolverError(error), operationName, path: error.path },
              'unexpected error in GraphQL request',
            );
          }
        },
        async willSendResponse({ contextValue, response }) {
          // formatError has masked the errors already; this adds the request
          // id, which formatError cannot see, so that support can find the log.
          if (response.body.kind !== 'single' || !contextValue?.requestId) return;
          const { errors } = response.body.singleResult;
          if (!errors) return;
          response.body.singleResult.errors = errors.map((error) =>
            error.extensions?.code === 'INTERNAL_SERVER_ERROR'
              ? { ...error, extensions: { ...error.extensions, requestId: contextValue.requestId } }
              : error,
          );
        },
      };
    },
  };
}

/**
 * Rejects a subscription sent over HTTP with 400 BAD_REQUEST. Over HTTP,
 * graphql-js would call the field's resolver without an event, which fails
 * with an internal error; subscriptions belong on the WebSocket endpoint.
 */
export function subscriptionsOverHttpPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation !== 'subscription') return;
          throw new GraphQLError('Subscriptions are served over WebSocket, not HTTP.', {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          });
        },
      };
    },
  };
}
