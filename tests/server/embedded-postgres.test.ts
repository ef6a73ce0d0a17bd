import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ServerProcess } from '../support/server-process';
import { waitFor } from '../support/harness';

const SERVER = 'dist/src/main.js';
const DATA_DIR = path.resolve(`.data/test-embedded-${process.pid}`);
// A port apart from the defaults of `npm start` (5488) and the test suite (5489).
const PORT = String(55_000 + (process.pid % 5_000));

function startWithoutDatabaseUrl(): ServerProcess {
  return ServerProcess.start(SERVER, {
    PORT: '0',
    EMBEDDED_POSTGRES_DIR: DATA_DIR,
    EMBEDDED_POSTGRES_PORT: PORT,
    LOG_LEVEL: 'info',
  });
}

async function postmasterPid(): Promise<number> {
  return Number((await readFile(path.join(DATA_DIR, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('embedded Postgres', () => {
  afterAll(async () => {
    await rm(DATA_DIR, { recursive: true, force: true });
  });

  test('starts, survives SIGKILL of the server and stops on SIGTERM', async () => {
    const first = startWithoutDatabaseUrl();
    const firstBase = await first.waitForListening();
    expect(first.logs.map((log) => log.msg)).toContain(
      'embedded Postgres started because DATABASE_URL is unset',
    );
    expect((await fetch(`${firstBase}/readyz`)).status).toBe(200);
    const postgresPid = await postmasterPid();

    first.signal('SIGKILL');
    await first.wait();
    // The database outlives the killed server; the next start must cope.
    expect(isRunning(postgresPid)).toBe(true);

    const second = startWithoutDatabaseUrl();
    const secondBase = await second.waitForListening();
    expect(second.logs.map((log) => log.msg)).toContain(
      'adopted an embedded Postgres left running by a process that was killed',
    );
    const response = await fetch(`${secondBase}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });

    second.signal('SIGTERM');
    expect(await second.wait()).toBe(0);
    expect(second.logs.map((log) => log.msg)).toContain('embedded Postgres stopped');
    await waitFor(
      () => !existsSync(path.join(DATA_DIR, 'postmaster.pid')),
      10_000,
      'postmaster.pid to go',
    );
    await waitFor(() => !isRunning(postgresPid), 10_000, 'the Postgres process to exit');
  });

  test('exits 0 on SIGTERM after its Postgres died', async () => {
    const server = startWithoutDatabaseUrl();
    await server.waitForListening();
    const postgresPid = await postmasterPid();

    process.kill(postgresPid, 'SIGKILL');
    await waitFor(() => !isRunning(postgresPid), 10_000, 'the Postgres process to exit');
    server.signal('SIGTERM');

    expect(await server.wait()).toBe(0);
    expect(server.logs.map((log) => log.msg)).toContain(
      'embedded Postgres was no longer running at shutdown',
    );
  });
});
