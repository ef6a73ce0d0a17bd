import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { createLogger } from '../../src/logging/logger';
import {
  databaseUrl,
  DATABASE_PREFIX,
  TEST_SERVER_URL_ENV,
  TEST_TEMPLATE_ENV,
  withClient,
} from './test-database';

const EMBEDDED_TEST_PORT = 5489;

/**
 * Prepares Postgres for the suite: DATABASE_URL when set, otherwise an
 * embedded Postgres of its own (another port and folder than `npm start`).
 * Compiles the server, which the tests also run as a child process, and
 * migrates one template database that each test file copies.
 */
export default async function globalSetup(): Promise<void> {
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn');
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const embedded = await startEmbeddedPostgres({
      dataDir: '.data/test-postgres',
      port: EMBEDDED_TEST_PORT,
      database: 'postgres',
      logger,
    });
    (globalThis as { embeddedPostgres?: typeof embedded }).embeddedPostgres = embedded;
    serverUrl = embedded.url;
  }

  const template = `${DATABASE_PREFIX}${process.pid}_template`;
  await withClient(serverUrl, async (client) => {
    await dropLeftovers(client);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(template)}`);
  });
  // The migrations run in a child process of the compiled code: MikroORM's
  // global metadata, once created in this process, breaks MikroORM inside the
  // test sandboxes that jest runs in it.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['dist/src/database/migrate.js'], {
    stdio: 'inherit',
    env: { ...process.env, DATABASE_URL: databaseUrl(serverUrl, template), LOG_LEVEL: 'warn' },
  });

  process.env[TEST_SERVER_URL_ENV] = serverUrl;
  process.env[TEST_TEMPLATE_ENV] = template;
}

/** Drops databases of earlier runs whose jest process no longer exists. */
async function dropLeftovers(client: import('pg').Client): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE '${DATABASE_PREFIX}%'`,
  );
  for (const { datname } of rows) {
    const pid = Number(datname.slice(DATABASE_PREFIX.length).split('_')[0]);
    if (isAlive(pid)) continue;
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
