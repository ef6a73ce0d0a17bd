import { createClient } from 'graphql-ws';
import { Client as PgClient } from 'pg';
import WebSocket from 'ws';
import { createTestDatabase } from '../support/test-database';
import { waitFor } from '../support/harness';
import { seededRandom, send, transactionUuid, type ClientCounters } from './bank-client';
import { Cluster } from './bank-cluster';
import { createWorld } from './bank-setup';
import { readBalances, verify } from './bank-verify';
import { BankClient, Expectation, type BankWorld, type WorkloadLog } from './bank-workload';

/**
 * The bank test: many clients move money at random through the API while
 * server processes are killed with SIGKILL and started again, then the
 * ledger is checked against what the clients were told.
 *
 * BANK_MODE=short (the default, run by CI) is small; BANK_MODE=long is the
 * full run recorded in docs/reliability.md. BANK_OPERATIONS, BANK_CLIENTS,
 * BANK_KILLS, BANK_INSTANCES and BANK_SEED override single settings.
 */
const LONG = process.env.BANK_MODE === 'long';
const SETTINGS = {
  operations: Number(process.env.BANK_OPERATIONS ?? (LONG ? 20_000 : 800)),
  clients: Number(process.env.BANK_CLIENTS ?? (LONG ? 64 : 16)),
  kills: Number(process.env.BANK_KILLS ?? (LONG ? 3 : 2)),
  instances: Number(process.env.BANK_INSTANCES ?? 3),
  seed: Number(process.env.BANK_SEED ?? 20261204),
};

// Every request comes from 127.0.0.1, and the clients are the only callers.
const SERVER_ENVIRONMENT = {
  NODE_ENV: 'test',
  RATE_LIMITS: JSON.stringify({
    loginPerIp: { points: 1_000_000, durationSeconds: 60 },
    registrationPerIp: { points: 1_000_000, durationSeconds: 60 },
    inquiryPerCaller: { points: 1_000_000, durationSeconds: 60 },
    transferPerMember: { points: 1_000_000, durationSeconds: 60 },
  }),
  EVENT_POLL_INTERVAL_MS: '200',
};

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function runBank(instances: number, label: string): Promise<void> {
  const database = await createTestDatabase();
  const random = seededRandom(SETTINGS.seed + instances);
  const world: BankWorld = await createWorld(database.url, SERVER_ENVIRONMENT, {
    merchants: 2,
    cards: Math.max(20, SETTINGS.clients * 3),
    cardValue: 5_000,
    members: Math.max(4, Math.ceil(SETTINGS.clients / 2)),
  });
  const cluster = new Cluster({ ...SERVER_ENVIRONMENT, DATABASE_URL: database.url });
  const counters: ClientCounters = { requests: 0, retries: 0, retriedKeys: new Set() };
  const log: WorkloadLog = { acknowledged: [], rejected: new Map(), byKind: new Map() };
  const expectation = new Expectation();
  const events: string[] = [];
  const subscriberErrors: unknown[] = [];
  let subscriber: ReturnType<typeof createClient> | undefined;

  try {
    await cluster.start(instances);

    // With several instances, a subscriber on the first one, which is never
    // killed, must see every transaction of merchant 0 exactly once, wherever
    // the money moved.
    let firstEventAt: string | undefined;
    if (instances > 1) {
      cluster.instances[0]!.protected = true;
      subscriber = createClient({
        url: `${cluster.instances[0]!.url!.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${world.merchants[0]!.key}` },
        retryAttempts: 0,
      });
      subscriber.subscribe(
        { query: 'subscription { merchantTransactionPosted { transaction { id } } }' },
        {
          next: (message) =>
            events.push(
              transactionUuid((message.data as any).merchantTransactionPosted.transaction.id),
            ),
          // The subscription ends with an error when the cluster stops, after the checks.
          error: (error) => subscriberErrors.push(error),
          complete: () => undefined,
        },
      );
      firstEventAt = await probeSubscriber(cluster, world, events, counters);
    }
    // Read after the probe, whose charge is not part of the workload.
    const before = await readBalances(database.url, world);

    const perClient = Math.ceil(SETTINGS.operations / SETTINGS.clients);
    const total = perClient * SETTINGS.clients;
    const started = Date.now();
    const clients = Array.from(
      { length: SETTINGS.clients },
      (_, index) =>
        new BankClient(
          `client${index}`,
          world,
          cluster,
          seededRandom(SETTINGS.seed * 31 + index),
          counters,
          expectation,
          log,
        ),
    );
    // A client that gives up ends the test at once. Otherwise the other
    // clients finish their share, the total never reaches the next kill, and
    // the wait below stays idle until it times out.
    let clientFailure: unknown;
    const done = Promise.all(clients.map((client) => client.run(perClient)));
    done.catch((error: unknown) => (clientFailure = error));
    const operationsSoFar = () => [...log.byKind.values()].reduce((sum, count) => sum + count, 0);
    for (let kill = 1; kill <= SETTINGS.kills; kill++) {
      await waitFor(
        () => {
          if (clientFailure) throw clientFailure;
          return operationsSoFar() >= (total * kill) / (SETTINGS.kills + 1);
        },
        30 * 60_000,
        `kill ${kill}`,
      );
      await cluster.killAndRestart(random, 200);
    }
    await done;
    const seconds = (Date.now() - started) / 1_000;

    let eventsChecked = 0;
    if (instances > 1) {
      eventsChecked = await checkEvents(database.url, world, events, firstEventAt!);
      expect(subscriberErrors).toEqual([]);
    }
    const exitCodes = await cluster.stop();

    const verdict = await verify(
      database.url,
      world,
      before,
      expectation,
      log,
      counters.retriedKeys,
    );
    print(
      `\nbank test, ${label}: ${instances} instance(s), ${SETTINGS.clients} clients, seed ${SETTINGS.seed}`,
    );
    print(
      `  operations ${operationsSoFar()} in ${seconds.toFixed(1)} s, requests ${counters.requests}, retries ${counters.retries}, kills ${cluster.kills}`,
    );
    print(`  by kind: ${[...log.byKind].map(([kind, count]) => `${kind} ${count}`).join(', ')}`);
    print(
      `  typed rejections: ${[...log.rejected].map(([code, count]) => `${code} ${count}`).join(', ') || 'none'}`,
    );
    for (const [name, value] of Object.entries(verdict.figures)) print(`  ${name}: ${value}`);
    if (instances > 1) print(`  events checked: ${eventsChecked}`);
    print(`  exit codes at SIGTERM: ${exitCodes.join(', ')}`);
    print(
      `  violations: ${verdict.violations.length === 0 ? 'none' : verdict.violations.join('; ')}`,
    );

    expect(verdict.violations).toEqual([]);
    expect(cluster.kills).toBe(SETTINGS.kills);
    expect(exitCodes.every((code) => code === 0)).toBe(true);
  } finally {
    await subscriber?.dispose();
    await cluster.stop();
    await database.drop();
  }
}

/**
 * Charges a card until the subscriber reports it: graphql-ws does not confirm
 * a subscription, so only a delivered event shows that it is live. Returns
 * the creation time of that first event's transaction.
 */
async function probeSubscriber(
  cluster: Cluster,
  world: BankWorld,
  events: string[],
  counters: ClientCounters,
): Promise<string> {
  const random = seededRandom(1);
  for (let attempt = 0; attempt < 50 && events.length === 0; attempt++) {
    const input = {
      prepaidId: world.cards[0],
      amount: 1,
      idempotencyKey: `probe-${attempt}`,
      orderReference: 'probe',
    };
    await send(
      cluster,
      random,
      counters,
      'mutation($input: ChargeInput!) { charge(input: $input) { __typename } }',
      { input },
      world.merchants[0]!.key,
      `probe-${attempt}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (events.length === 0) throw new Error('the subscriber received no event');
  return events[0]!;
}

/** Compares the subscriber's events with merchant 0's transactions from the first event on. */
async function checkEvents(
  databaseUrl: string,
  world: BankWorld,
  events: string[],
  firstEventId: string,
): Promise<number> {
  const client = new PgClient({ connectionString: databaseUrl });
  await client.connect();
  try {
    const expectedIds = async () =>
      (
        await client.query<{ id: string }>(
          `SELECT id FROM ledger_transaction
            WHERE merchant_id = $1 AND created_at >= (SELECT created_at FROM ledger_transaction WHERE id = $2)`,
          [world.merchants[0]!.id, firstEventId],
        )
      ).rows.map((row) => row.id);
    const expected = await expectedIds();
    await waitFor(() => events.length >= expected.length, 30_000, 'every event to arrive');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(new Set(events).size).toBe(events.length);
    expect([...events].sort()).toEqual([...expected].sort());
    return events.length;
  } finally {
    await client.end();
  }
}

describe('bank test', () => {
  const timeout = LONG ? 60 * 60_000 : 10 * 60_000;

  test('one instance, killed and restarted', () => runBank(1, 'single instance'), timeout);

  test(
    `${SETTINGS.instances} instances on one database`,
    () => runBank(SETTINGS.instances, 'several instances'),
    timeout,
  );
});
