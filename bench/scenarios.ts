import { createClient, type Client } from 'graphql-ws';
import { Client as PgClient } from 'pg';
import WebSocket from 'ws';
import { BenchServer, median, percentile } from './bench-server';
import type { BenchWorld } from './bench-setup';
import { load, uniqueKey, type LoadResult } from './load';
import { initialisePgbench, runPgbench, type PgbenchResult } from './pgbench';

export interface ChargeFigures {
  clients: number;
  charge: LoadResult;
  pgbench: PgbenchResult;
}

const CHARGE = `mutation($input: ChargeInput!) { charge(input: $input) { __typename ... on ChargeSuccess { balanceAfter } } }`;

/** Charges random wallets into one merchant, then runs pgbench's TPC-B with as many clients. */
export async function chargeScenario(
  server: BenchServer,
  world: BenchWorld,
  pgbenchUrl: string,
  clients: number,
  seconds: number,
): Promise<ChargeFigures> {
  const merchant = world.merchants[0]!;
  const charge = await load({
    url: `${server.url}/graphql`,
    connections: clients,
    seconds,
    headers: { authorization: `Bearer ${merchant.key}` },
    expected: 'ChargeSuccess',
    body: () => {
      const wallet = world.wallets[Math.floor(Math.random() * world.wallets.length)]!;
      const input = {
        prepaidId: wallet.prepaidId,
        amount: 1,
        idempotencyKey: uniqueKey(),
        orderReference: 'bench',
      };
      return JSON.stringify({ query: CHARGE, variables: { input } });
    },
  });
  await initialisePgbench(pgbenchUrl);
  const pgbench = await runPgbench(pgbenchUrl, clients, seconds);
  return { clients, charge, pgbench };
}

/** `viewer { wallet { balance } }` with member sessions against `{ __typename }` on the same server. */
export async function balanceScenario(
  server: BenchServer,
  world: BenchWorld,
  clients: number,
  seconds: number,
): Promise<{ balance: LoadResult; trivial: LoadResult }> {
  const token = world.wallets[0]!.sessionToken;
  const balance = await load({
    url: `${server.url}/graphql`,
    connections: clients,
    seconds,
    headers: { authorization: `Bearer ${token}` },
    expected: 'balanceAvailable',
    body: () => JSON.stringify({ query: '{ viewer { wallet { balanceAvailable } } }' }),
  });
  const trivial = await load({
    url: `${server.url}/graphql`,
    connections: clients,
    seconds,
    expected: '__typename',
    body: () => JSON.stringify({ query: '{ __typename }' }),
  });
  return { balance, trivial };
}

export interface SubscriptionFigures {
  subscribers: number;
  events: number;
  deliveries: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: number;
  connectSeconds: number;
}

/**
 * Opens `subscribers` graphql-ws connections spread over the merchants, each
 * subscribed to its merchant's transactions, then charges `burst` times
 * across the merchants at once and measures, for every delivery, the time
 * from the transaction's commit (its created_at, taken from the database
 * clock at insert) to its arrival.
 */
export async function subscriptionScenario(
  server: BenchServer,
  world: BenchWorld,
  databaseUrl: string,
  subscribers: number,
  burst: number,
): Promise<SubscriptionFigures> {
  const clients: Client[] = [];
  const arrivals = new Map<string, number[]>();
  let registered = 0;
  const connectStarted = performance.now();
  for (let index = 0; index < subscribers; index++) {
    const merchant = world.merchants[index % world.merchants.length]!;
    const client = createClient({
      url: `${server.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${merchant.key}` },
      retryAttempts: 0,
      lazy: false,
      on: { connected: () => registered++ },
    });
    client.subscribe(
      { query: 'subscription { merchantTransactionPosted { transaction { id } } }' },
      {
        next: (message) => {
          const id = (message.data as any).merchantTransactionPosted.transaction.id as string;
          const list = arrivals.get(id) ?? [];
          list.push(Date.now());
          arrivals.set(id, list);
        },
        error: () => undefined,
        complete: () => undefined,
      },
    );
    clients.push(client);
    // Connecting in small steps keeps the server's accept queue short.
    if (index % 200 === 199) await waitUntil(() => registered > index - 50, 60_000);
  }
  await waitUntil(() => registered >= subscribers, 120_000);
  // The subscriptions are live once the server has registered them; the
  // protocol does not say when, so a pause follows the last connection.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const connectSeconds = (performance.now() - connectStarted) / 1_000;

  const charges = await Promise.all(
    Array.from({ length: burst }, async (_, index) => {
      const merchant = world.merchants[index % world.merchants.length]!;
      const wallet = world.wallets[index % world.wallets.length]!;
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${merchant.key}` },
        body: JSON.stringify({
          query:
            'mutation($input: ChargeInput!) { charge(input: $input) { ... on ChargeSuccess { transaction { id } } } }',
          variables: {
            input: {
              prepaidId: wallet.prepaidId,
              amount: 1,
              idempotencyKey: uniqueKey(),
              orderReference: 'burst',
            },
          },
        }),
      });
      return ((await response.json()) as any).data.charge.transaction.id as string;
    }),
  );
  const perMerchant = subscribers / world.merchants.length;
  const expected = burst * perMerchant;
  await waitUntil(
    () => [...arrivals.values()].reduce((sum, list) => sum + list.length, 0) >= expected,
    120_000,
  );
  const rssMiB = await server.rssMiB();

  const committedAt = await commitTimes(databaseUrl, charges);
  const latencies: number[] = [];
  for (const id of charges) {
    for (const arrival of arrivals.get(id) ?? []) latencies.push(arrival - committedAt.get(id)!);
  }
  await Promise.all(clients.map((client) => client.dispose()));
  return {
    subscribers,
    events: burst,
    deliveries: latencies.length,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    rssMiB,
    connectSeconds,
  };
}

async function commitTimes(databaseUrl: string, globalIds: string[]): Promise<Map<string, number>> {
  const client = new PgClient({ connectionString: databaseUrl });
  await client.connect();
  try {
    const ids = globalIds.map((id) =>
      Buffer.from(id, 'base64url').toString('utf8').replace('Transaction:', ''),
    );
    const { rows } = await client.query<{ id: string; created_ms: string }>(
      'SELECT id, (extract(epoch from created_at) * 1000)::bigint AS created_ms FROM ledger_transaction WHERE id = ANY($1::uuid[])',
      [ids],
    );
    const byUuid = new Map(rows.map((row) => [row.id, Number(row.created_ms)]));
    return new Map(globalIds.map((id, index) => [id, byUuid.get(ids[index]!)!]));
  } finally {
    await client.end();
  }
}

export interface HistoryFigures {
  transactions: number;
  firstPageMs: number;
  deepPageMs: number;
}

/**
 * Gives one wallet `count` transactions with SQL and times its first
 * history page and a page near the end. The rows are adjustments of 1 point
 * that alternate credit and debit, so the ledger still balances for an even
 * count; their balance-after values are 0, which history pages do not read.
 */
export async function historyScenario(
  server: BenchServer,
  databaseUrl: string,
  wallet: BenchWorld['wallets'][number],
  count: number,
  samples: number,
): Promise<HistoryFigures> {
  const client = new PgClient({ connectionString: databaseUrl });
  await client.connect();
  let deepCursor: string;
  try {
    const { rows } = await client.query<{ id: string }>(
      `SELECT id FROM ledger_account WHERE kind = 'adjustment'`,
    );
    const adjustment = rows[0]!.id;
    // Odd rows credit the wallet 1 point and even rows debit it again, so the
    // balances stay where they were; created_at spreads the rows over the past.
    await client.query(
      `INSERT INTO ledger_transaction (kind, status, debit_account_id, credit_account_id, amount,
         debit_balance_after, credit_balance_after, description, created_at)
       SELECT 'adjustment', 'posted',
              CASE WHEN n % 2 = 1 THEN $1::bigint ELSE $2::bigint END,
              CASE WHEN n % 2 = 1 THEN $2::bigint ELSE $1::bigint END,
              1, 0, 0, 'bench history', now() - make_interval(secs => ($3 - n) / 100.0) - interval '1 day'
         FROM generate_series(1, $3::integer) AS n`,
      [adjustment, wallet.ledgerAccountId, count],
    );
    await client.query('ANALYZE ledger_transaction');
    const deep = await client.query<{ sort_time: string; id: string }>(
      `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS sort_time, id
         FROM ledger_transaction WHERE credit_account_id = $1 OR debit_account_id = $1
        ORDER BY created_at, id OFFSET 20 LIMIT 1`,
      [wallet.ledgerAccountId],
    );
    deepCursor = Buffer.from(JSON.stringify([deep.rows[0]!.sort_time, deep.rows[0]!.id])).toString(
      'base64url',
    );
  } finally {
    await client.end();
  }

  const page = async (after: string | null) => {
    const started = performance.now();
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${wallet.sessionToken}`,
      },
      body: JSON.stringify({
        query:
          'query($after: String) { viewer { wallet { history(first: 20, after: $after) { edges { node { id amount } } } } } }',
        variables: { after },
      }),
    });
    const body = (await response.json()) as any;
    if (body.data.viewer.wallet.history.edges.length !== 20)
      throw new Error('history page is short');
    return performance.now() - started;
  };
  const first: number[] = [];
  const deep: number[] = [];
  for (let sample = 0; sample < samples; sample++) {
    first.push(await page(null));
    deep.push(await page(deepCursor));
  }
  return { transactions: count, firstPageMs: median(first), deepPageMs: median(deep) };
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
