import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { percentile } from './bench-server';

const execFileAsync = promisify(execFile);

export interface PgbenchResult {
  tps: number;
  p50Ms: number;
  p99Ms: number;
}

function connectionArguments(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  const args = [
    '-h',
    parsed.hostname,
    '-p',
    parsed.port || '5432',
    '-U',
    decodeURIComponent(parsed.username || 'postgres'),
  ];
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(parsed.password) };
  return { args: [...args, parsed.pathname.slice(1)], env };
}

/** Creates pgbench's tables at scale 1 in the database of `url`. */
export async function initialisePgbench(url: string): Promise<void> {
  const { args, env } = connectionArguments(url);
  await execFileAsync('pgbench', ['-i', '-s', '1', '-q', ...args], { env });
}

/**
 * Runs pgbench's built-in TPC-B transaction with `clients` clients for
 * `seconds`: every transaction updates the one branch row of scale 1, which
 * makes it a bank transaction with one hot row, like charges into one
 * merchant. Latencies come from pgbench's per-transaction log.
 */
export async function runPgbench(
  url: string,
  clients: number,
  seconds: number,
): Promise<PgbenchResult> {
  const { args, env } = connectionArguments(url);
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'pgbench-'));
  try {
    const { stdout } = await execFileAsync(
      'pgbench',
      [
        '-n',
        '-c',
        String(clients),
        '-j',
        String(Math.min(clients, 2)),
        '-T',
        String(seconds),
        '-l',
        '--log-prefix',
        path.join(logDir, 'log'),
        ...args,
      ],
      { env, maxBuffer: 10 * 1024 * 1024 },
    );
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1]);
    const latencies: number[] = [];
    for (const file of await readdir(logDir)) {
      for (const line of (await readFile(path.join(logDir, file), 'utf8')).split('\n')) {
        // Columns: client, transaction number, latency in microseconds, ...
        const micros = Number(line.split(' ')[2]);
        if (Number.isFinite(micros)) latencies.push(micros / 1_000);
      }
    }
    return { tps, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
  } finally {
    await rm(logDir, { recursive: true, force: true });
  }
}
