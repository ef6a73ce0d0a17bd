import { timingSafeEqual, createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { Kind, type OperationDefinitionNode } from 'graphql';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Sources of the gauge values, read at each scrape. */
export interface GaugeSources {
  /** Subscriptions that receive events on this instance. */
  activeSubscriptions(): number;
  /** Open graphql-ws connections. */
  webSocketConnections(): number;
  /** The database pool: connections lent out, idle, and requests waiting for one. */
  databasePool(): { used: number; free: number; pending: number };
}

// Paths outside this list are counted as one label value, so that scanners
// probing random URLs cannot create a time series per path.
const KNOWN_ROUTES = new Set(['/graphql', '/healthz', '/readyz', '/metrics']);

/**
 * The Prometheus metrics of one server. A registry of its own, rather than
 * prom-client's global one, lets tests run several servers in one process.
 * Every label takes its values from a fixed set (routes, schema field names,
 * error codes, transaction kinds), never from what a client sends.
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly httpDuration = new Histogram({
    name: 'wallet_http_request_duration_seconds',
    help: 'Duration of HTTP requests, by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  private readonly graphqlOperations = new Counter({
    name: 'wallet_graphql_operations_total',
    help: 'GraphQL operations over HTTP, by operation type, root field and outcome (ok or the error code).',
    labelNames: ['type', 'field', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly ledgerPostings = new Counter({
    name: 'wallet_ledger_postings_total',
    help: 'Ledger postings, by transaction kind and result (posted, replayed, a failure code, or error).',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  private readonly rateLimitRejections = new Counter({
    name: 'wallet_rate_limit_rejections_total',
    help: 'Requests rejected by a rate limit, by limit.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Registers the gauges, which read their values at each scrape. */
  watch(sources: GaugeSources): void {
    new Gauge({
      name: 'wallet_active_subscriptions',
      help: 'GraphQL subscriptions that receive ledger events on this instance.',
      registers: [this.registry],
      collect() {
        this.set(sources.activeSubscriptions());
      },
    });
    new Gauge({
      name: 'wallet_websocket_connections',
      help: 'Open graphql-ws connections on this instance.',
      registers: [this.registry],
      collect() {
        this.set(sources.webSocketConnections());
      },
    });
    new Gauge({
      name: 'wallet_database_pool_connections',
      help: 'Connections of the main database pool, by state: used, free, or pending (requests waiting for one).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const pool = sources.databasePool();
        this.set({ state: 'used' }, pool.used);
        this.set({ state: 'free' }, pool.free);
        this.set({ state: 'pending' }, pool.pending);
      },
    });
  }

  /** Counts a ledger posting; LedgerService calls it with each outcome. */
  postingDone(kind: string, result: string): void {
    this.ledgerPostings.inc({ kind, result });
  }

  /** Counts a request that a rate limit rejected. */
  rateLimited(limit: string): void {
    this.rateLimitRejections.inc({ limit });
  }

  /** Returns Express middleware that times every request. */
  httpTimer(): RequestHandler {
    return (request, response, next) => {
      const end = this.httpDuration.startTimer();
      response.on('finish', () => {
        const path = request.originalUrl.split('?')[0]!;
        end({
          method: request.method,
          route: KNOWN_ROUTES.has(path) ? path : 'other',
          status: String(response.statusCode),
        });
      });
      next();
    };
  }

  /**
   * Returns an Apollo Server plugin that counts each HTTP operation once per
   * root field, with `ok` or the code of its first error as the outcome.
   */
  graphqlCounter(): ApolloServerPlugin {
    return {
      requestDidStart: async () => ({
        willSendResponse: async ({ operation, response }) => {
          const body = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const code = body?.errors?.[0]?.extensions?.code;
          const outcome = body?.errors?.length ? String(code ?? 'UNKNOWN') : 'ok';
          for (const field of rootFields(operation)) {
            this.graphqlOperations.inc({
              type: operation?.operation ?? 'unknown',
              field,
              outcome,
            });
          }
        },
      }),
    };
  }
}

/** Returns the names of an operation's root fields, or `(invalid)` for one that did not parse or validate. */
function rootFields(operation: OperationDefinitionNode | undefined | null): string[] {
  if (!operation) return ['(invalid)'];
  const names = operation.selectionSet.selections.flatMap((selection) =>
    selection.kind === Kind.FIELD ? [selection.name.value] : ['(fragment)'],
  );
  return [...new Set(names)];
}

/**
 * Returns the handler that serves the metrics in Prometheus's text format. With a token, only a
 * request with `Authorization: Bearer <token>` gets them; the others get 401.
 */
export function metricsRoute(metrics: Metrics, token: string | undefined): RequestHandler {
  const expected = token ? digest(token) : undefined;
  return async (request, response) => {
    if (expected) {
      const presented = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (!presented || !timingSafeEqual(digest(presented), expected)) {
        response.status(401).set('www-authenticate', 'Bearer').end();
        return;
      }
    }
    response.set('content-type', metrics.registry.contentType);
    response.end(await metrics.registry.metrics());
  };
}

// Comparing digests keeps the comparison constant-time whatever the lengths.
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
