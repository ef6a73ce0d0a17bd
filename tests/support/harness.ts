import 'reflect-metadata';
import { ClientError, GraphQLClient } from 'graphql-request';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig, type AppConfig } from '../../src/config/config';
import { sqlFor } from '../../src/database/sql';
import type { LedgerCheckReport } from '../../src/ledger/ledger-check.service';
import { createLogger } from '../../src/logging/logger';
import { startServer, type RunningServer } from '../../src/server/app';
import { SmtpSink } from './smtp-sink';
import { createTestDatabase } from './test-database';

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T;
  errors?: Array<{ message: string; extensions?: Record<string, unknown>; path?: unknown[] }>;
  status: number;
}

export interface TestMerchant {
  id: string;
  settlementAccountId: string;
  key: string;
}

/**
 * A real server on port 0 with a database of its own, plus shortcuts for the
 * operator steps (merchants, keys, cards) that the CLI would do.
 */
export class Harness {
  private wsClients: WsClient[] = [];
  private readonly peers: RunningServer[] = [];
  /** Log lines of the server, when started with `captureLogs`. */
  readonly logs: string[] = [];

  private constructor(
    readonly server: RunningServer,
    readonly config: AppConfig,
    private readonly dropDatabase: () => Promise<void>,
    private readonly smtpSink: SmtpSink | undefined,
  ) {}

  /**
   * Starts a server on a database of its own. With `smtp`, a real SMTP server
   * on loopback receives the server's mail. Every request of a test comes
   * from 127.0.0.1, so the per-IP rate limits are raised unless the test
   * sets RATE_LIMITS itself.
   */
  static async start(
    environment: Record<string, string> = {},
    options: { smtp?: boolean; captureLogs?: boolean } = {},
  ): Promise<Harness> {
    const database = await createTestDatabase();
    const smtpSink = options.smtp ? await SmtpSink.start() : undefined;
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DATABASE_URL: database.url,
      PORT: '0',
      MIGRATE_ON_START: 'false',
      EVENT_POLL_INTERVAL_MS: '200',
      RATE_LIMITS: JSON.stringify(GENEROUS_IP_LIMITS),
      ...(smtpSink ? { SMTP_URL: smtpSink.url } : {}),
      ...environment,
    });
    const logs: string[] = [];
    const logger = options.captureLogs
      ? createLogger('debug', { write: (line: string) => void logs.push(line) })
      : createLogger(config.logLevel);
    const server = await startServer(config, logger);
    const harness = new Harness(server, config, database.drop, smtpSink);
    harness.logs.push(...logs);
    // Later lines go straight to the harness.
    logs.push = (...lines: string[]) => harness.logs.push(...lines);
    return harness;
  }

  /**
   * Starts another server instance on this harness's database, as a second
   * node behind a load balancer would run; stopped by stop().
   */
  async startPeer(): Promise<RunningServer> {
    const peer = await startServer(this.config, createLogger(this.config.logLevel));
    this.peers.push(peer);
    return peer;
  }

  /** The SMTP server that receives this server's mail; start the harness with `smtp: true`. */
  get smtp(): SmtpSink {
    if (!this.smtpSink) throw new Error('start the harness with { smtp: true } to receive mail');
    return this.smtpSink;
  }

  get services() {
    return this.server.services;
  }

  em() {
    return this.server.orm.em.fork();
  }

  sql() {
    return sqlFor(this.em());
  }

  async createMerchant(name = 'Test Shop'): Promise<TestMerchant> {
    const merchant = await this.services.merchants.create(this.em(), name);
    const key = await this.services.apiKeys.create(this.sql(), merchant.id, 'test');
    return { id: merchant.id, settlementAccountId: merchant.settlementAccountId, key: key.key };
  }

  /** Issues cards and returns their digits. */
  async issueCards(count: number, faceValue: number): Promise<string[]> {
    const batch = await this.services.cards.issueBatch(this.em(), count, faceValue);
    return batch.cards.map((card) => card.digits);
  }

  /** Puts points on a prepaid ID's account with an operator adjustment, as test setup. */
  async fund(prepaidId: string, amount: number): Promise<void> {
    const found = await this.services.prepaidIds.resolve(this.sql(), prepaidId);
    if (!found) throw new Error('unknown prepaid ID');
    const adjustment = await this.services.ledger.operatorAccountId(this.sql(), 'adjustment');
    const result = await this.services.ledger.post(this.em(), {
      kind: 'adjustment',
      debitAccountId: adjustment,
      creditAccountId: found.ledgerAccountId,
      amount,
      description: 'test funding',
    });
    if (!result.ok) throw new Error(`funding failed: ${result.code}`);
  }

  /** Sends one GraphQL request over HTTP and returns data and errors instead of throwing. */
  async request<T = Record<string, any>>(
    query: string,
    variables: Record<string, unknown> = {},
    token?: string,
    url = this.server.url,
  ): Promise<GraphQLResponse<T>> {
    const client = new GraphQLClient(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    try {
      const response = await client.rawRequest<T>(query, variables);
      return {
        data: response.data,
        errors: response.errors as GraphQLResponse['errors'],
        status: response.status,
      };
    } catch (error) {
      if (error instanceof ClientError) {
        return {
          data: error.response.data as T | undefined,
          errors: error.response.errors as GraphQLResponse['errors'],
          status: error.response.status,
        };
      }
      throw error;
    }
  }

  /**
   * A graphql-ws client authenticated with the token; closed by stop(). With
   * `lazy: false` it keeps one socket open even while no operation runs.
   */
  wsClient(token?: string, options: { lazy?: boolean; url?: string } = {}): WsClient {
    const client = createClient({
      url: options.url ?? this.server.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
      lazy: options.lazy ?? true,
    });
    this.wsClients.push(client);
    return client;
  }

  /**
   * Waits until the server has `count` live subscriptions. graphql-ws does not
   * acknowledge a subscription, so a test must wait before it triggers events.
   */
  async waitForSubscribers(count: number, timeoutMs = 5_000): Promise<void> {
    await waitFor(() => this.services.hub.activeCount >= count, timeoutMs, `${count} subscribers`);
  }

  async balanceOf(prepaidId: string): Promise<number> {
    const found = await this.services.prepaidIds.resolve(this.sql(), prepaidId);
    if (!found) throw new Error('unknown prepaid ID');
    const row = await this.sql().one<{ balance_posted: string }>(
      'SELECT balance_posted FROM ledger_account WHERE id = ?',
      [found.ledgerAccountId],
    );
    return Number(row!.balance_posted);
  }

  async accountBalance(accountId: string): Promise<number> {
    const row = await this.sql().one<{ balance_posted: string }>(
      'SELECT balance_posted FROM ledger_account WHERE id = ?',
      [accountId],
    );
    return Number(row!.balance_posted);
  }

  async count(sqlText: string, params: unknown[] = []): Promise<number> {
    const row = await this.sql().one<{ count: string }>(sqlText, params);
    return Number(row!.count);
  }

  ledgerCheck(): Promise<LedgerCheckReport> {
    return this.services.ledgerCheck.check(this.em());
  }

  /**
   * Fails the test unless the ledger balances and the unused-balance report
   * for this moment equals the sum of wallet and card balances.
   */
  async expectBalanced(): Promise<void> {
    const report = await this.ledgerCheck();
    if (!report.balanced) throw new Error(`ledger does not balance: ${JSON.stringify(report)}`);
    // Database time, because a test may have moved the server's clock.
    const now = await this.sql().one<{ now: string }>('SELECT now() AS now');
    const unused = await this.services.operators.unusedBalanceReport(this.em(), new Date(now!.now));
    const stored = await this.count(
      `SELECT COALESCE(SUM(balance_posted), 0) AS count FROM ledger_account WHERE kind IN ('wallet', 'card')`,
    );
    if (unused.total !== stored) {
      throw new Error(`unused-balance report ${unused.total} differs from the balances ${stored}`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.wsClients.map((client) => client.dispose()));
    await Promise.all(this.peers.map((peer) => peer.stop()));
    await this.server.stop();
    await this.smtpSink?.stop();
    await this.dropDatabase();
  }
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const GENEROUS_IP_LIMITS = {
  loginPerIp: { points: 100_000, durationSeconds: 900 },
  registrationPerIp: { points: 100_000, durationSeconds: 3_600 },
};

/** Starts a harness for the test file, checks the ledger after every test, and stops it after all. */
export function useHarness(
  environment: Record<string, string> = {},
  options: { smtp?: boolean; captureLogs?: boolean } = {},
): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await Harness.start(environment, options);
  });
  afterEach(async () => {
    await harness?.expectBalanced();
  });
  afterAll(async () => {
    await harness?.stop();
  });
  return () => {
    if (!harness) throw new Error('harness not started');
    return harness;
  };
}

export const CHARGE = `
  mutation Charge($input: ChargeInput!) {
    charge(input: $input) {
      __typename
      ... on ChargeSuccess {
        balanceAfter
        replayed
        transaction { id kind status amount direction balanceAfter orderReference description metadata }
      }
      ... on UserError { code message }
      ... on InsufficientBalanceError { available }
      ... on AmountLimitExceededError { maximum }
    }
  }`;

export const REFUND = `
  mutation Refund($input: RefundInput!) {
    refund(input: $input) {
      __typename
      ... on RefundSuccess {
        refundableRemaining
        replayed
        transaction { id kind amount direction balanceAfter parentTransactionId }
      }
      ... on UserError { code message }
      ... on RefundExceedsChargeError { refundable }
    }
  }`;

let keyCounter = 0;

/** A fresh idempotency key. */
export function newKey(label = 'key'): string {
  return `${label}-${process.pid}-${Date.now()}-${++keyCounter}`;
}

export function chargeInput(
  prepaidId: string,
  amount: unknown,
  extra: Record<string, unknown> = {},
) {
  return {
    input: {
      prepaidId,
      amount,
      idempotencyKey: newKey('charge'),
      orderReference: `order-${keyCounter}`,
      ...extra,
    },
  };
}

/** The prefix of an API key `mk_<prefix>_<secret>`, by which it is listed and revoked. */
export function apiKeyPrefix(key: string): string {
  return key.slice(3, 15);
}

/** The secret part of an API key, which may itself contain "_". */
export function apiKeySecret(key: string): string {
  return key.slice(16);
}
