import 'reflect-metadata';
import { ConfigError, loadConfig, productionWarnings, type AppConfig } from './config/config';
import { checkDatabaseConnection } from './database/connection-check';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './database/embedded-postgres';
import { createLogger, type Logger } from './logging/logger';
import { startServer, type RunningServer } from './server/app';

/** Starts the database when needed, then the server, and stops both on SIGTERM or SIGINT. */
async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  for (const warning of productionWarnings(config)) logger.warn(warning);

  let embedded: EmbeddedPostgres | undefined;
  let server: RunningServer | undefined;
  const stop = installShutdown(
    logger,
    config.shutdownTimeoutMs,
    async () => {
      await server?.stop();
      await embedded?.stop();
    },
    // Left running, the embedded Postgres would be adopted by the next start
    // with whatever this process had not finished.
    async () => embedded?.stop(),
  );

  try {
    if (!config.databaseUrl) {
      embedded = await startEmbeddedPostgres({
        dataDir: config.embeddedPostgres.dir,
        port: config.embeddedPostgres.port,
        database: 'wallet',
        logger,
      });
      config = { ...config, databaseUrl: embedded.url };
    } else {
      await checkDatabaseConnection(config.databaseUrl);
    }
    server = await startServer(config, logger);
  } catch (error) {
    logger.fatal({ reason: (error as Error).message }, 'server failed to start');
    await stop(1);
  }
}

/**
 * Runs `cleanup` once on SIGTERM or SIGINT and exits 0. A second signal exits
 * at once with status 1. A cleanup that outlasts the timeout runs
 * `lastResort`, for at most 10 seconds, then exits with status 1.
 */
function installShutdown(
  logger: Logger,
  timeoutMs: number,
  cleanup: () => Promise<void>,
  lastResort: () => Promise<void>,
) {
  let stoppingSince: number | undefined;
  const stop = async (exitCode: number) => {
    if (stoppingSince !== undefined) {
      // Ctrl-C under `npm start` delivers SIGINT twice at once, from the
      // terminal and from npm; only a later request means "stop now".
      if (Date.now() - stoppingSince < 2_000) return;
      logger.warn('second stop request; exiting without waiting');
      process.exit(1);
    }
    stoppingSince = Date.now();
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out; exiting');
      const exit = () => process.exit(1);
      setTimeout(exit, 10_000).unref();
      lastResort().then(exit, (error: unknown) => {
        logger.error({ err: error }, 'last-resort cleanup failed');
        exit();
      });
    }, timeoutMs + 5_000);
    try {
      await cleanup();
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      exitCode = 1;
    }
    clearTimeout(timer);
    logger.info({ exitCode }, 'process exiting');
    process.exit(exitCode);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      logger.info({ signal }, 'shutdown requested');
      void stop(0);
    });
  }
  return stop;
}

void main();
