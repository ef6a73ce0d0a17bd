import type { EmbeddedPostgres } from '../../src/database/embedded-postgres';
import { TEST_SERVER_URL_ENV, TEST_TEMPLATE_ENV, withClient } from './test-database';

/** Drops the template and stops the embedded Postgres if the setup started one. */
export default async function globalTeardown(): Promise<void> {
  const serverUrl = process.env[TEST_SERVER_URL_ENV];
  const template = process.env[TEST_TEMPLATE_ENV];
  if (serverUrl && template) {
    await withClient(serverUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(template)} WITH (FORCE)`),
    );
  }
  await (globalThis as { embeddedPostgres?: EmbeddedPostgres }).embeddedPostgres?.stop();
}
