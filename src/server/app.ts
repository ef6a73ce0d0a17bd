import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import { MikroORM } from '@mikro-orm/postgresql';
import express from 'express';
import { useServer } from 'graphql-ws/use/ws';
import { pinoHttp } from 'pino-http';
import { WebSocketServer } from 'ws';
import type { AppConfig } from '../config/config';
import { ormOptions } from '../database/orm-options';
import { EventHub } from '../events/event-hub';
import { EventRelay } from '../events/event-relay';
import { Loaders, type Caller, type RequestContext } from '../graphql/context';
import type { Logger } from '../logging/logger';
import { createServices, type Services } from '../services';
import { authenticate, bearerToken } from './authentication';
import { errorLoggingPlugin, maskError } from './errors';
import { addHealthRoutes, type Readiness } from './health';
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

/**
 * Starts the GraphQL server: HTTP and graphql-ws on one port and one path,
 * /healthz and /readyz, with migrations first when configured.
 * `config.databaseUrl` must be set; main.ts starts an embedded Postgres when not.
 */
export async function startServer(config: AppConfig, logger: Logger): Promise<RunningServer> {
  const databaseUrl = config.databaseUrl;
  if (!databaseUrl) throw new Error('startServer needs a database URL');

  const orm = await MikroORM.init(ormOptions({ databaseUrl, poolMax: config.databasePoolMax }));
  const hub = new EventHub();
  const relay = new EventRelay({ databaseUrl, hub, logger, pollIntervalMs: config.eventPollIntervalMs });
  try {
    if (config.migrateOnStart) {
      const applied = await orm.getMigrator().up();
      logger.info({ applied: applied.map((migration) => migration.name) }, 'database migrations applied');
    }
    await relay.start();
    return await listen(config, logger, orm, hub, relay);
  } catch (error) {
    await relay.stop();
    await orm.close();
    throw error;
  }
}

async function listen(
  config: AppConfig,
  logger: Logger,
  orm: MikroORM,
  hub: EventHub,
  relay: EventRelay,
): Promise<RunningServer> {
  const services = createServices({ config, logger, relay, hub });
  const schema = await getSchema();
  const readiness: Readiness = { accepting: true };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const httpServer = http.createServer(app);
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: config.bodyLimitBytes });

  const wsCleanup = useServer<Record<string, unknown>, { caller?: Caller; ip?: string }>(
    {
      schema,
      onConnect: async (ctx) => {
        const em = orm.em.fork();
        try {
          const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
          ctx.extra.caller = await authenticate(em, services, bearerToken(raw));
          ctx.extra.ip = ctx.extra.request.socket.remoteAddress ?? '';
          return ctx.extra.caller.kind !== 'anonymous';
        } catch {
          return false;
        }
      },
      context: (ctx): RequestContext => {
        const requestId = randomUUID();
        return {
          requestId,
          logger: logger.child({ requestId, transport: 'ws' }),
          em: orm.em.fork(),
          caller: ctx.extra.caller ?? { kind: 'anonymous' },
          loaders: new Loaders(),
          services,
          ip: ctx.extra.ip ?? '',
        };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => maskError(error) as never),
    },
    wsServer,
  );

  const apollo = new ApolloServer<RequestContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted) => maskError(formatted),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              readiness.accepting = false;
              hub.closeAll();
              await wsCleanup.dispose();
            },
          };
        },
      },
      errorLoggingPlugin(),
    ],
  });
  await apollo.start();

  app.use((request, response, next) => {
    const header = request.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
    response.setHeader('x-request-id', requestId);
    (request as { id?: string }).id = requestId;
    next();
  });
  app.use(
    pinoHttp({
      logger,
      genReqId: (request) => (request as { id?: string }).id ?? randomUUID(),
      autoLogging: { ignore: (request) => request.url === '/healthz' || request.url === '/readyz' },
    }),
  );
  addHealthRoutes(app, orm, readiness);
  app.use(
    '/graphql',
    express.json({ limit: config.bodyLimitBytes }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const em = orm.em.fork();
        const requestId = String((req as { id?: string }).id);
        const caller = await authenticate(em, services, bearerToken(req.headers.authorization));
        return {
          requestId,
          logger: logger.child({ requestId }),
          em,
          caller,
          loaders: new Loaders(),
          services,
          ip: req.ip ?? '',
        };
      },
    }),
  );

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
        await apollo.stop();
        await relay.stop();
        await orm.close();
        logger.info('server stopped');
      })();
      return stopping;
    },
  };
}
