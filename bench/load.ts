import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses that were not the expected success, such as errors or rejections. */
  failures: number;
  total: number;
}

/**
 * Sends POST requests with bodies made per request (so every charge has its
 * own idempotency key) from `connections` concurrent connections for
 * `seconds`, and counts the answers that lack `expected`.
 */
export async function load(options: {
  url: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
  body: () => string;
  expected: string;
}): Promise<LoadResult> {
  let failures = 0;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: options.body() }),
        onResponse: (status, body) => {
          if (status !== 200 || !body.includes(options.expected)) failures++;
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    failures: failures + result.errors + result.timeouts,
    total: result.requests.total,
  };
}

export function uniqueKey(): string {
  return randomUUID();
}
