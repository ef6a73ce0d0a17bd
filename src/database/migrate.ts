import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../config/config';
import { checkDatabaseConnection } from './connection-check';
import { startEmbeddedPostgres } from './embedded-postgres';
import { ormOptions } from './orm-options';
import { createLogger } from '../logging/logger';

/** Applies pending migrations to DATABASE_URL, or to the embedded Postgres when it is unset. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: config.embeddedPostgres.dir,
        port: config.embeddedPostgres.port,
        database: 'wallet',
        logger,
      });
  const databaseUrl = config.databaseUrl ?? embedded!.url;
  try {
    await checkDatabaseConnection(databaseUrl);
    const orm = await MikroORM.init(ormOptions({ databaseUrl, poolMax: 1 }));
    const applied = await orm.getMigrator().up();
    await orm.close();
    logger.info({ applied: applied.map((migration) => migration.name) }, 'migrations applied');
  } finally {
    await embedded?.stop();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
});
