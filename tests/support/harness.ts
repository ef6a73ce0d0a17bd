import 'reflect-metadata';
import { ClientError, GraphQLClient } from 'graphql-request';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig, type AppConfig } from '../../src/config/config';
import { sqlFor } from '../../src/database/sql';
import type { LedgerCheckReport } from '../../src/ledger/ledger-check.service';
import { createLogger } from '../../src/logging/logger';
import { startServer, type RunningServer } from '../../src/server/app';
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

  private constructor(
    readonly server: RunningServer,
    readonly config: AppConfig,
    private readonly dropDatabase: () => Promise<void>,
  ) {}

  static async start(environment: Record<string, string> = {}): Promise<Harness> {
    const database = await createTestDatabase();
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DATABASE_URL: database.url,
      PORT: '0',
      MIGRATE_ON_START: 'false',
      EVENT_POLL_INTERVAL_MS: '200',
      ...environment,
    });
    const server = await startServer(config, createLogger(config.logLevel));
    return new Harness(server, config, database.drop);
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

  /** Sends one GraphQL request over HTTP and returns data and errors instead of throwing. */
  async request<T = Record<string, any>>(
    query: string,
    variables: Record<string, unknown> = {},
    token?: string,
  ): Promise<GraphQLResponse<T>> {
    const client = new GraphQLClient(this.server.url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    try {
      const response = await client.rawRequest<T>(query, variables);
      return { data: response.data, errors: response.errors as GraphQLResponse['errors'], status: response.status };
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

  /** A graphql-ws client authenticated with the token; closed by stop(). */
  wsClient(token?: string): WsClient {
    const client = createClient({
      url: this.server.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
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

  /** Fails the test unless the ledger balances. */
  async expectBalanced(): Promise<void> {
    const report = await this.ledgerCheck();
    if (!report.balanced) throw new Error(`ledger does not balance: ${JSON.stringify(report)}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.wsClients.map((client) => client.dispose()));
    await this.server.stop();
    await this.dropDatabase();
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts a harness for the test file, checks the ledger after every test, and stops it after all. */
export function useHarness(environment: Record<string, string> = {}): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await Harness.start(environment);
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

export function chargeInput(prepaidId: string, amount: unknown, extra: Record<string, unknown> = {}) {
  return {
    input: { prepaidId, amount, idempotencyKey: newKey('charge'), orderReference: `order-${keyCounter}`, ...extra },
  };
}
