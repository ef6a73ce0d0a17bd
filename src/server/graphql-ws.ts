import type { IncomingMessage } from 'node:http';
import {
  execute,
  getOperationAST,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  subscribe,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket, type WebSocketServer } from 'ws';
import type { Caller, RequestContext } from '../graphql/context';
import { allRules, parseWithLimit, type OperationLimits } from './abuse-limits';
import {
  connectionState,
  wsContext,
  type ConnectionState,
  type ContextDependencies,
} from './context';
import { isClientError, maskError } from './errors';
import { endingWith, RunningOperations, SocketCounter, type SocketLimits } from './socket-limits';
import { conditionalRootFieldError } from './subscription-rules';

/**
 * Serves graphql-ws on the WebSocket server. The connection is authenticated
 * at connection_init, and every operation authenticates again, so that a
 * revoked key or an ended session stops working on an open socket too.
 *
 * Parsing and validation happen here rather than inside graphql-ws, which
 * would close the whole socket on a syntax error and report validation
 * errors without a code. Errors of execution are masked and logged once,
 * as on HTTP.
 */
export function serveGraphqlWs(
  wsServer: WebSocketServer,
  schema: GraphQLSchema,
  dependencies: ContextDependencies,
  options: {
    limits: OperationLimits;
    sockets: SocketLimits;
    hideSuggestions: boolean;
    /** Off: introspection is rejected, as Apollo Server rejects it on HTTP. */
    introspection: boolean;
    /** The client address of an upgrade request, computed as for HTTP requests. */
    clientAddress: (request: IncomingMessage) => string;
  },
): { dispose(): void | Promise<void> } {
  const rules = options.introspection
    ? allRules(options.limits)
    : [...allRules(options.limits), NoSchemaIntrospectionCustomRule];
  const present = (error: GraphQLError, code: string) => {
    const formatted = maskError(withCode(error, code).toJSON());
    if (!options.hideSuggestions) return formatted;
    return { ...formatted, message: formatted.message.replace(/ ?Did you mean .*\?$/, '') };
  };
  const sockets = new SocketCounter(options.sockets);
  const ends = new WeakMap<object, () => void>();

  /** Parses, validates and authenticates one operation, or returns the errors to send. */
  const prepare = async (
    state: ConnectionState,
    payload: SubscribePayload,
  ): Promise<GraphQLError[] | (ExecutionArgs & { contextValue: RequestContext })> => {
    let document: DocumentNode;
    try {
      document = parseWithLimit(payload.query, options.limits.maxTokens);
    } catch (error) {
      return [withCode(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')];
    }
    const operation = getOperationAST(document, payload.operationName);
    const conditional = operation && conditionalRootFieldError(document, operation);
    if (conditional) return [conditional];
    let errors: readonly GraphQLError[];
    try {
      errors = validate(schema, document, rules);
    } catch (error) {
      // graphql-js throws for a few documents instead of reporting them. The
      // check above covers the known one, and this keeps the socket open for others.
      if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_VALIDATION_FAILED')];
      throw error;
    }
    if (errors.length > 0)
      return errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
    // graphql-ws skips execution and sends nothing when the name matches no
    // operation, and the operation would then never end.
    if (!operation) {
      return [
        new GraphQLError('The document has no operation of that name, or several without one.', {
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        }),
      ];
    }
    let contextValue: RequestContext;
    try {
      contextValue = await wsContext(state, dependencies);
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
    return {
      schema,
      document,
      variableValues: payload.variables,
      operationName: payload.operationName,
      contextValue,
    };
  };
  return useServer<Record<string, unknown>, ConnectionState>(
    {
      schema,
      onConnect: async (ctx) => {
        try {
          Object.assign(
            ctx.extra,
            await connectionState(
              ctx.connectionParams,
              ctx.extra.request,
              options.clientAddress(ctx.extra.request),
              dependencies,
            ),
          );
        } catch {
          return false;
        }
        // Every subscription belongs to a merchant or a member.
        const caller = ctx.extra.caller;
        if (!caller || caller.kind === 'anonymous') return false;

        const release = sockets.acquire(caller);
        if (!release) {
          dependencies.logger.warn(
            { caller: callerLabel(caller) },
            'WebSocket connection rejected: the caller has too many open connections',
          );
          ctx.extra.socket.close(CloseCode.Forbidden, 'Too many connections for this caller');
          return false;
        }
        // The socket may have closed while the token was checked, and then
        // onClose has run already and would never release the count.
        if (ctx.extra.socket.readyState !== WebSocket.OPEN) {
          release();
          return false;
        }
        // Ending the session or revoking the key closes the connection, so
        // that it stops counting against the caller's limit.
        const socket = ctx.extra.socket;
        const unhold = dependencies.services.hub.hold(tokenTag(caller), () =>
          socket.close(CloseCode.Unauthorized, 'Session ended or API key revoked'),
        );
        ctx.extra.releaseSocket = () => {
          unhold();
          release();
        };
        ctx.extra.operations = new RunningOperations(options.sockets.operationsPerSocket);
        return true;
      },
      onClose: (ctx) => ctx.extra.releaseSocket?.(),
      onSubscribe: async (ctx, id, payload) => {
        const end = ctx.extra.operations!.start(id);
        if (end instanceof GraphQLError) return [end];
        try {
          const prepared = await prepare(ctx.extra, payload);
          if (Array.isArray(prepared)) end();
          else ends.set(prepared.contextValue, end);
          return prepared;
        } catch (error) {
          // Thrown here, it would close the whole socket with 4500 and its
          // message as the reason.
          end();
          dependencies.logger.error(
            { err: error, operationId: id },
            'unexpected error while preparing a GraphQL WebSocket operation',
          );
          return [
            new GraphQLError('Internal server error', {
              extensions: { code: 'INTERNAL_SERVER_ERROR' },
            }),
          ];
        }
      },
      // The operation counts until its execution ends, not until the client
      // completes its id. An error thrown by graphql-js becomes the
      // operation's result, so that onNext masks and logs it and the socket stays open.
      execute: async (args) => {
        try {
          return await execute(args);
        } catch (error) {
          return thrownResult(error);
        } finally {
          ends.get(args.contextValue as object)?.();
        }
      },
      subscribe: async (args) => {
        const end = ends.get(args.contextValue as object) ?? (() => undefined);
        let result: Awaited<ReturnType<typeof subscribe>>;
        try {
          result = await subscribe(args);
        } catch (error) {
          end();
          return thrownResult(error);
        }
        if (!(Symbol.asyncIterator in result)) {
          end();
          return result;
        }
        return endingWith(result, end);
      },
      onNext: (_ctx, _id, _payload, args, result) => {
        if (!result.errors) return;
        const context = args.contextValue as RequestContext;
        const errors = result.errors.map((error) => {
          // Errors without a path concern the request as a whole, such as
          // variables of the wrong type; the client caused them.
          const formatted = error.path
            ? error.toJSON()
            : withCode(error, 'BAD_USER_INPUT').toJSON();
          if (isClientError(formatted)) return maskError(formatted);
          context.logger.error(
            { err: error.originalError ?? error, path: error.path },
            'unexpected error in GraphQL WebSocket operation',
          );
          const masked = maskError(formatted);
          return { ...masked, extensions: { ...masked.extensions, requestId: context.requestId } };
        });
        return { ...result, errors };
      },
      onError: (_ctx, _id, _payload, errors) =>
        errors.map((error) => present(error, 'GRAPHQL_VALIDATION_FAILED')),
    },
    wsServer,
  );
}

/** Returns the error with `code` added, unless it has a code already. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

/** Names the caller in a log line without its token. */
function callerLabel(caller: Caller): string {
  if (caller.kind === 'member') return `member:${caller.memberId}`;
  if (caller.kind === 'merchant') return `merchant:${caller.merchantId}`;
  return 'anonymous';
}

/** Returns the hub tag of the session or API key that authenticated a connection. */
function tokenTag(caller: Exclude<Caller, { kind: 'anonymous' }>): string {
  return caller.kind === 'member' ? `session:${caller.sessionId}` : `api-key:${caller.apiKeyId}`;
}

/** Returns a thrown error as an operation result: a GraphQLError as it is, anything else as an internal error. */
function thrownResult(error: unknown): ExecutionResult {
  if (error instanceof GraphQLError) return { errors: [error] };
  const cause = error instanceof Error ? error : new Error(String(error));
  return {
    errors: [
      new GraphQLError(cause.message, {
        originalError: cause,
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      }),
    ],
  };
}
