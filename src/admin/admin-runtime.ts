import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig, type AppConfig } from '../config/config';
import { checkDatabaseConnection } from '../database/connection-check';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../database/embedded-postgres';
import { ormOptions } from '../database/orm-options';
import { createLogger, type Logger } from '../logging/logger';
import { createServices, type Services } from '../services';

export interface AdminRuntime {
  config: AppConfig;
  logger: Logger;
  orm: MikroORM;
  services: Services;
  close(): Promise<void>;
}

/**
 * Connects the operator CLI to the same database as the server: DATABASE_URL
 * when set, otherwise the embedded Postgres (attaching to it when the server
 * is running). Migrations run first, so the CLI also works on a fresh clone.
 */
export async function openAdminRuntime(): Promise<AdminRuntime> {
  let config = loadConfig();
  // The CLI's output is for people; only warnings and errors are logged.
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  let embedded: EmbeddedPostgres | undefined;
  if (config.databaseUrl) {
    await checkDatabaseConnection(config.databaseUrl);
  } else {
    embedded = await startEmbeddedPostgres({
      dataDir: config.embeddedPostgres.dir,
      port: config.embeddedPostgres.port,
      database: 'wallet',
      logger,
    });
    config = { ...config, databaseUrl: embedded.url };
  }
  const orm = await MikroORM.init(ormOptions({ databaseUrl: config.databaseUrl!, poolMax: 2 }));
  await orm.getMigrator().up();
  const services = createServices({ config, logger, orm });
  return {
    config,
    logger,
    orm,
    services,
    async close() {
      await services.limits.close();
      await orm.close();
      await embedded?.stop();
    },
  };
}
