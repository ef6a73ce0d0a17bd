import 'reflect-metadata';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres';
import { createLogger } from '../src/logging/logger';
import { BenchServer, median } from './bench-server';
import { buildWorld, freshDatabase, withAdmin } from './bench-setup';
import {
  balanceScenario,
  chargeScenario,
  historyScenario,
  subscriptionScenario,
} from './scenarios';

/**
 * npm run bench: measures the service against references on the same
 * Postgres in the same run, prints a table and writes it into
 * docs/benchmarks.md between the result markers. BENCH_SECONDS sets the
 * length of each load run (default 15), BENCH_SUBSCRIBERS the number of
 * subscribers (default 10,000) and BENCH_HISTORY the large history size
 * (default 1,000,000).
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 10_000);
const LARGE_HISTORY = Number(process.env.BENCH_HISTORY ?? 1_000_000);

const EMBEDDED_PORT = 5490;
const RESULTS_START = '<!-- bench results start -->';
const RESULTS_END = '<!-- bench results end -->';

interface Row {
  measure: string;
  value: string;
  reference: string;
  ratio: string;
  target: string;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function postgresVersion(serverUrl: string): Promise<string> {
  return withAdmin(
    serverUrl,
    async (client) => (await client.query('SHOW server_version')).rows[0].server_version,
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  let serverUrl = process.env.DATABASE_URL;
  const embedded = serverUrl
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: '.data/bench-postgres',
        port: EMBEDDED_PORT,
        database: 'postgres',
        logger: createLogger('warn'),
      });
  serverUrl ??= embedded!.url;
  const postgres = await postgresVersionSafe(serverUrl);
  const rows: Row[] = [];
  const server: { current?: BenchServer } = {};
  try {
    const databaseUrl = await freshDatabase(serverUrl, 'wallet_bench');
    const pgbenchUrl = await freshDatabase(serverUrl, 'wallet_bench_pgbench');
    print('building the data: merchants, wallets, sessions ...');
    const world = await buildWorld(databaseUrl, {
      merchants: 100,
      wallets: 2_000,
      walletBalance: 1_000_000,
    });
    const environment = {
      DATABASE_URL: databaseUrl,
      MIGRATE_ON_START: 'false',
      NODE_ENV: 'production',
      RATE_LIMITS: JSON.stringify({
        inquiryPerCaller: { points: 1_000_000_000, durationSeconds: 60 },
      }),
    };

    // Start: process spawn to /readyz, against the migrated database.
    const startTimes: number[] = [];
    for (let run = 0; run < 5; run++) {
      const { server: started, readyAfterMs } = await BenchServer.start(
        environment,
        await freePort(),
      );
      startTimes.push(readyAfterMs);
      await started.stop();
    }
    const start = median(startTimes);
    rows.push({
      measure: 'start to /readyz',
      value: `${start.toFixed(0)} ms`,
      reference: '—',
      ratio: '—',
      target: '≤ 3000 ms',
    });
    print(`start: ${start.toFixed(0)} ms`);

    server.current = (await BenchServer.start(environment, await freePort())).server;
    for (const clients of [8, 32]) {
      print(`charge with ${clients} clients, then pgbench TPC-B ...`);
      const figures = await chargeScenario(server.current, world, pgbenchUrl, clients, SECONDS);
      const ratio = figures.charge.requestsPerSecond / figures.pgbench.tps;
      rows.push({
        measure: `charge, ${clients} clients (tps; p50/p99)`,
        value: `${figures.charge.requestsPerSecond.toFixed(0)}; ${figures.charge.p50Ms} / ${figures.charge.p99Ms} ms`,
        reference: `pgbench ${figures.pgbench.tps.toFixed(0)}; ${figures.pgbench.p50Ms.toFixed(1)} / ${figures.pgbench.p99Ms.toFixed(1)} ms`,
        ratio: `${ratio.toFixed(2)}×`,
        target: '≥ 0.6×, p99 ≤ 50 ms',
      });
      if (figures.charge.failures > 0)
        print(`  ${figures.charge.failures} of ${figures.charge.total} charges did not succeed`);
    }

    print('balance query against { __typename } ...');
    const balance = await balanceScenario(server.current, world, 32, SECONDS);
    rows.push({
      measure: 'balance query, 32 clients (rps)',
      value: `${balance.balance.requestsPerSecond.toFixed(0)}`,
      reference: `{ __typename } ${balance.trivial.requestsPerSecond.toFixed(0)}`,
      ratio: `${(balance.balance.requestsPerSecond / balance.trivial.requestsPerSecond).toFixed(2)}×`,
      target: '≥ 0.5×',
    });

    for (const [index, count] of [
      [0, 1_000],
      [1, LARGE_HISTORY],
    ] as const) {
      print(`history with ${count} transactions ...`);
      const history = await historyScenario(
        server.current,
        databaseUrl,
        world.wallets[index + 1]!,
        count,
        50,
      );
      rows.push({
        measure: `history, ${count.toLocaleString('en')} transactions (first; deep page)`,
        value: `${history.firstPageMs.toFixed(1)}; ${history.deepPageMs.toFixed(1)} ms`,
        reference: 'first page',
        ratio: `${(history.deepPageMs / history.firstPageMs).toFixed(2)}×`,
        target: count >= 1_000_000 ? '≤ 1.2×' : '—',
      });
    }

    print(`subscriptions: ${SUBSCRIBERS} subscribers ...`);
    const subscriptions = await subscriptionScenario(
      server.current,
      world,
      databaseUrl,
      SUBSCRIBERS,
      200,
    );
    rows.push({
      measure: `${subscriptions.subscribers.toLocaleString('en')} subscribers, ${subscriptions.events} charges (commit to delivery p50/p99)`,
      value: `${subscriptions.p50Ms.toFixed(0)} / ${subscriptions.p99Ms.toFixed(0)} ms; RSS ${subscriptions.rssMiB.toFixed(0)} MiB`,
      reference: `${subscriptions.deliveries.toLocaleString('en')} deliveries`,
      ratio: '—',
      target: 'p99 ≤ 200 ms, RSS ≤ 1024 MiB',
    });
  } finally {
    await server.current?.stop();
    await embedded?.stop();
  }

  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}, PostgreSQL ${postgres} (${embedded ? `embedded, port ${EMBEDDED_PORT}` : 'DATABASE_URL'})`;
  const table = [
    '| measure | this service | reference (same run) | ratio | target |',
    '|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.measure} | ${row.value} | ${row.reference} | ${row.ratio} | ${row.target} |`,
    ),
  ];
  const block = [
    RESULTS_START,
    `Run of ${new Date().toISOString().slice(0, 10)}: ${machine}; ${SECONDS} s per load run; whole run ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    ...table,
    RESULTS_END,
  ].join('\n');
  print('');
  for (const line of table) print(line);
  await writeResults(block);
}

async function postgresVersionSafe(serverUrl: string): Promise<string> {
  return postgresVersion(serverUrl).catch(() => 'unknown');
}

/** Replaces the results block of docs/benchmarks.md, or appends one. */
async function writeResults(block: string): Promise<void> {
  const file = 'docs/benchmarks.md';
  let text = await readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const start = text.indexOf(RESULTS_START);
  const end = text.indexOf(RESULTS_END);
  text =
    start >= 0 && end > start
      ? text.slice(0, start) + block + text.slice(end + RESULTS_END.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(file, text);
  print(`\nwrote the results into ${file}`);
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
