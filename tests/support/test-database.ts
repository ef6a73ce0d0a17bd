import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Client } from 'pg';

/** Environment variables through which the global setup tells the test workers where the database is. */
export const TEST_SERVER_URL_ENV = 'WALLET_TEST_SERVER_URL';
export const TEST_TEMPLATE_ENV = 'WALLET_TEST_TEMPLATE';

// Database names carry this machine's name and the jest parent's PID, so
// that a later run can drop what a killed run on this machine left behind
// without touching a run still in progress, or another machine's databases on
// a shared Postgres.
export const DATABASE_PREFIX = `wallet_t_${createHash('sha256').update(hostname()).digest('hex').slice(0, 8)}_`;

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withClient<T>(
  serverUrl: string,
  action: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client({ connectionString: serverUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await action(client);
  } finally {
    await client.end();
  }
}

let counter = 0;

/** Creates an empty, migrated database for one test file by copying the run's template. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const serverUrl = process.env[TEST_SERVER_URL_ENV];
  const template = process.env[TEST_TEMPLATE_ENV];
  if (!serverUrl || !template)
    throw new Error('test database settings missing; run the tests through jest');
  const name = `${template.replace('_template', '')}_${process.pid}_${++counter}`;
  await withClient(serverUrl, (client) =>
    client.query(
      `CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(template)}`,
    ),
  );
  return {
    url: databaseUrl(serverUrl, name),
    drop: () =>
      withClient(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
      ).then(() => undefined),
  };
}
