import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDisableSuggestions } from '@apollo/server/plugin/disableSuggestions';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { MikroORM } from '@mikro-orm/postgresql';
import express from 'express';
import { pinoHttp } from 'pino-http';
import { WebSocketServer } from 'ws';
import type { AppConfig } from '../config/config';
import { ormOptions } from '../database/orm-options';
import { EventHub } from '../events/event-hub';
import { EventRelay } from '../events/event-relay';
import type { RequestContext } from '../graphql/context';
import type { Logger } from '../logging/logger';
import { MailDispatcher } from '../mail/mail-dispatcher';
import { startHoldSweeper } from '../merchants/hold-sweeper';
import { API_KEY_REVOKED_CHANNEL } from '../merchants/api-key.service';
import { createServices, SESSION_ENDED_CHANNEL, type Services } from '../services';
import { limitRules, tokenLimitMiddleware } from './abuse-limits';
import { clientAddressOf, httpContext } from './context';
import { serveGraphqlWs } from './graphql-ws';
import {
  errorLoggingPlugin,
  maskError,
  restoreLimitCode,
  subscriptionsOverHttpPlugin,
} from './errors';
import { startSessionSweeper } from './session-sweeper';
import { addHealthRoutes, type Readiness } from './health';
import { Metrics, metricsRoute } from '../metrics/metrics';
import { jsonErrorHandler } from './http-errors';
import { getSchema } from './schema';

export interface RunningServer {
  /** HTTP URL of the GraphQL endpoint. */
  url: string;
  /** WebSocket URL of the same endpoint, for graphql-ws. */
  wsUrl: string;
  port: number;
  orm: MikroORM;
  services: Services;
  /** Stops accepting, finishes in-flight requests, closes subscriptions and the database. */
  stop(): Promise<void>;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
// Probes and scrapes arrive every few seconds; an access log line each would bury the requests.
const UNLOGGED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Starts the GraphQL server: HTTP and graphql-ws on one port and one path,
 * /healthz and /readyz, with migrations first when configured.
 * `config.databaseUrl` must be set; main.ts starts an embedded Postgres when not.
 */
export async function startServer(config: AppConfig, logger: Logger): Promise<RunningServer> {
  const databaseUrl = config.databaseUrl;
  if (!databaseUrl) throw new Error('startServer needs a database URL');

  const orm = await MikroORM.init(
    ormOptions({
      databaseUrl,
      poolMax: config.databasePoolMax,
      lockTimeoutMs: config.databaseLockTimeoutMs,
    }),
  );
  const hub = new EventHub();
  const relay = new EventRelay({
    databaseUrl,
    hub,
    logger,
    pollIntervalMs: config.eventPollIntervalMs,
  });
  relay.listen(SESSION_ENDED_CHANNEL, (sessionId) => hub.closeTagged(`session:${sessionId}`));
  relay.listen(API_KEY_REVOKED_CHANNEL, (keyId) => hub.closeTagged(`api-key:${keyId}`));
  const mailDispatcher = new MailDispatcher({
    forkEntityManager: () => orm.em.fork(),
    logger,
    smtpUrl: config.smtpUrl,
    mailFrom: config.mailFrom,
  });
  try {
    if (config.migrateOnStart) {
      const applied = await orm.getMigrator().up();
      logger.info(
        { applied: applied.map((migration) => migration.name) },
        'database migrations applied',
      );
    }
    await relay.start();
    mailDispatcher.start();
    const metrics = new Metrics();
    const services = createServices({ config, logger, orm, relay, mailDispatcher, hub, metrics });
    return await listen(config, logger, orm, services, metrics, {
      // No request waits for the mail dispatcher, so it stops while they drain.
      whileDraining: () => mailDispatcher.stop(),
      afterDraining: async () => {
        await relay.stop();
        await services.limits.close();
      },
    });
  } catch (error) {
    await mailDispatcher.stop();
    await relay.stop();
    await orm.close();
    throw error;
  }
}

async function listen(
  config: AppConfig,
  logger: Logger,
  orm: MikroORM,
  services: Services,
  metrics: Metrics,
  background: { whileDraining: () => Promise<void>; afterDraining: () => Promise<void> },
): Promise<RunningServer> {
  const schema = await getSchema();
  const readiness: Readiness = { accepting: true };
  const dependencies = { orm, services, logger };
  const { hub } = services;

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const httpServer = http.createServer(app);
  const wsServer = new WebSocketServer({
    server: httpServer,
    path: '/graphql',
    maxPayload: config.bodyLimitBytes,
  });

  const wsCleanup = serveGraphqlWs(wsServer, schema, dependencies, {
    limits: config.operationLimits,
    sockets: config.socketLimits,
    hideSuggestions: config.nodeEnv === 'production',
    introspection: config.introspection,
    clientAddress: clientAddressOf(app),
  });
  metrics.watch({
    activeSubscriptions: () => hub.activeCount,
    webSocketConnections: () => wsServer.clients.size,
    databasePool: () => poolUse(orm),
  });
  const stopSweeper = startSessionSweeper(orm, hub, services.sessions, services.apiKeys, logger);
  const stopHoldSweeper = startHoldSweeper(orm, services.authorizations, logger);

  const apollo = new ApolloServer<RequestContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    validationRules: limitRules(config.operationLimits),
    formatError: (formatted, error) => maskError(restoreLimitCode(formatted, error)),
    plugins: [
      ApolloServerPluginDrainHttpServer({
        httpServer,
        stopGracePeriodMillis: config.shutdownTimeoutMs,
      }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              readiness.accepting = false;
              stopSweeper();
              await stopHoldSweeper();
              hub.closeAll();
              await wsCleanup.dispose();
            },
          };
        },
      },
      errorLoggingPlugin(),
      subscriptionsOverHttpPlugin(),
      metrics.graphqlCounter(),
      // "Did you mean …?" would tell an attacker the names of fields that
      // introspection, off in production, hides.
      ...(config.nodeEnv === 'production' ? [ApolloServerPluginDisableSuggestions()] : []),
    ],
  });
  await apollo.start();

  app.use(metrics.httpTimer());
  app.use((request, response, next) => {
    const header = request.headers['x-request-id'];
    const requestId =
      typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
    response.setHeader('x-request-id', requestId);
    (request as { id?: string }).id = requestId;
    next();
  });
  app.use(
    pinoHttp({
      logger,
      genReqId: (request) => (request as { id?: string }).id ?? randomUUID(),
      autoLogging: { ignore: (request) => UNLOGGED_PATHS.has(request.url ?? '') },
      // Only the path is logged: a GET query string can carry a GraphQL
      // document with a prepaid ID or a token in it.
      serializers: {
        req: (request: { id: string; method: string; url: string; remoteAddress?: string }) => ({
          id: request.id,
          method: request.method,
          path: request.url.split('?')[0],
          remoteAddress: request.remoteAddress,
        }),
        res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
      },
    }),
  );
  addHealthRoutes(app, orm, readiness);
  app.get('/metrics', metricsRoute(metrics, config.metricsToken));
  app.use(
    '/graphql',
    rejectWhileStopping(readiness),
    express.json({ limit: config.bodyLimitBytes }),
    tokenLimitMiddleware(config.operationLimits.maxTokens),
    expressMiddleware(apollo, { context: async ({ req }) => httpContext(req, dependencies) }),
  );
  app.use(jsonErrorHandler(logger));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.info({ port, host: config.host }, 'server listening');

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}/graphql`,
    wsUrl: `ws://${host}:${port}/graphql`,
    port,
    orm,
    services,
    stop() {
      stopping ??= (async () => {
        readiness.accepting = false;
        await Promise.all([apollo.stop(), background.whileDraining()]);
        await background.afterDraining();
        await orm.close();
        logger.info('server stopped');
      })();
      return stopping;
    },
  };
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** Reads the use of MikroORM's connection pool, which knex keeps in a tarn pool. */
function poolUse(orm: MikroORM): { used: number; free: number; pending: number } {
  const pool = (orm.em.getConnection().getKnex().client as unknown as { pool?: TarnPool }).pool;
  if (!pool) return { used: 0, free: 0, pending: 0 };
  return { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() };
}

/**
 * Responds with 503 to a request that arrives on a kept-alive connection once
 * shutdown has begun. The drain closes such a connection after its current
 * response, so a later request could run and commit with no way to reply.
 */
function rejectWhileStopping(readiness: Readiness): express.RequestHandler {
  return (_request, response, next) => {
    if (readiness.accepting) return next();
    response.setHeader('Connection', 'close');
    response.status(503).json({
      errors: [
        {
          message: 'The server is shutting down. Retry on another instance or in a moment.',
          extensions: { code: 'SERVICE_UNAVAILABLE' },
        },
      ],
    });
  };
}
