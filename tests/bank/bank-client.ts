import type { Cluster } from './bank-cluster';

/** A deterministic PRNG (mulberry32), so that a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface Answer {
  data: Record<string, any>;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  attempts: number;
}

export interface ClientCounters {
  requests: number;
  retries: number;
  /** Requests that got no usable answer from some instance and were sent again. */
  retriedKeys: Set<string>;
}

const REQUEST_TIMEOUT_MS = 5_000;
const MAX_ATTEMPTS = 400;

/** Errors after which the same request is sent again: the server may or may not have done it. */
function isTransient(errors: Answer['errors']): boolean {
  return (errors ?? []).some((error) => error.extensions?.code === 'INTERNAL_SERVER_ERROR');
}

/**
 * Sends one GraphQL request to a live instance and retries it, unchanged and
 * with the same idempotency key, after a timeout, a refused connection, a
 * 5xx or an internal error, as a careful client would. Only an answer that
 * the server could not have given without finishing the work ends the loop.
 */
export async function send(
  cluster: Cluster,
  random: () => number,
  counters: ClientCounters,
  query: string,
  variables: Record<string, unknown>,
  token: string | undefined,
  retryKey: string,
): Promise<Answer> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    if (cluster.stopped) throw new Error(`the cluster stopped before ${retryKey} was answered`);
    const urls = cluster.liveUrls();
    if (urls.length === 0) {
      await sleep(50);
      continue;
    }
    const url = urls[Math.floor(random() * urls.length)]!;
    counters.requests++;
    try {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (response.status >= 500) throw new Error(`HTTP ${response.status}`);
      const body = (await response.json()) as {
        data?: Record<string, any>;
        errors?: Answer['errors'];
      };
      if (isTransient(body.errors)) throw new Error('internal error');
      return { data: body.data ?? {}, errors: body.errors, attempts: attempt };
    } catch {
      counters.retries++;
      counters.retriedKeys.add(retryKey);
      await sleep(20 + random() * 80);
    }
  }
  throw new Error(`no answer after ${MAX_ATTEMPTS} attempts for ${retryKey}`);
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Decodes a global Transaction ID to the ledger transaction's UUID. */
export function transactionUuid(globalId: string): string {
  return Buffer.from(globalId, 'base64url')
    .toString('utf8')
    .replace(/^Transaction:/, '');
}
