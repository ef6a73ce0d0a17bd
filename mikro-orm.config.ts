import 'reflect-metadata';
import { loadConfig } from './src/config/config';
import { ormOptions } from './src/database/orm-options';

// Used by the MikroORM CLI (`npm run migration:create`), which needs a running
// database: set DATABASE_URL, or start the server once to get the embedded one.
const config = loadConfig();
const embeddedUrl = `postgres://postgres:postgres@127.0.0.1:${config.embeddedPostgres.port}/wallet`;

export default ormOptions({
  databaseUrl: config.databaseUrl ?? embeddedUrl,
  poolMax: 2,
});
