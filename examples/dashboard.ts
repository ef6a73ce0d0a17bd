/**
 * A live dashboard: subscribes over graphql-ws and prints each committed
 * event as one line. With SESSION_TOKEN it follows a member's wallet
 * (balanceChanged); with API_KEY it follows a merchant's transactions
 * (merchantTransactionPosted).
 *
 * Run it against a local server (npm start), with a key from `npm run seed`:
 *
 *   API_KEY=mk_… npx ts-node --transpile-only examples/dashboard.ts
 *
 * Settings, from environment variables:
 *   API_URL        GraphQL endpoint; default http://127.0.0.1:4000/graphql. The
 *                  WebSocket URL is the same with ws:// or wss://.
 *   SESSION_TOKEN  member session token ms_… from login or completeLogin
 *   API_KEY        merchant API key mk_…; set either this or SESSION_TOKEN
 *   MAX_EVENTS     stop after this many events; unset runs until Ctrl-C
 *
 * Exits with 0 after MAX_EVENTS events or on Ctrl-C, 1 when the server
 * rejects the credentials or ends the subscription, and 2 when a setting is
 * missing or invalid.
 */
import { CloseCode, createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** Interval of the pings that this client sends, in milliseconds. */
const KEEP_ALIVE_MS = 15_000;
/** Time to wait for the pong to a ping before the socket counts as dead and is reopened. */
const PONG_TIMEOUT_MS = 5_000;
/** Close code for a missing pong; graphql-ws reconnects after it. */
const PONG_TIMEOUT_CLOSE_CODE = 4408;

interface TransactionFields {
  createdAt: string;
  kind: string;
  direction: 'CREDIT' | 'DEBIT';
  amount: number;
  orderReference: string | null;
  merchantName: string | null;
}

const BALANCE_CHANGED = `
  subscription {
    balanceChanged {
      balanceAvailable balanceHeld
      transaction { createdAt kind direction amount orderReference merchantName }
    }
  }`;

const MERCHANT_TRANSACTION_POSTED = `
  subscription {
    merchantTransactionPosted {
      settlementBalance
      transaction { createdAt kind direction amount orderReference merchantName }
    }
  }`;

interface Subscription {
  /** Name of the subscription field, for messages. */
  field: string;
  /** Token for the connection_init payload. */
  token: string;
  query: string;
  /** Formats one `data` payload as a line. */
  format(data: Record<string, unknown>): string;
}

/** Raised for a missing or invalid setting. The message names the variable. */
class SettingError extends Error {}

function webSocketUrl(apiUrl: string): string {
  const url = URL.canParse(apiUrl) ? new URL(apiUrl) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    throw new SettingError(`API_URL must be an http:// or https:// URL, got "${apiUrl}"`);
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

function maxEventsSetting(): number | undefined {
  const text = process.env.MAX_EVENTS;
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new SettingError(`MAX_EVENTS must be a positive whole number, got "${text}"`);
  }
  return value;
}

/** Formats the fields common to both subscriptions: time, kind, signed amount, order and merchant. */
function describeTransaction(transaction: TransactionFields): string {
  const sign = transaction.direction === 'DEBIT' ? '-' : '+';
  return [
    transaction.createdAt,
    transaction.kind,
    `${sign}${transaction.amount}`,
    transaction.orderReference ? `order ${transaction.orderReference}` : undefined,
    transaction.merchantName ? `at ${transaction.merchantName}` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join('  ');
}

function chooseSubscription(): Subscription {
  const sessionToken = process.env.SESSION_TOKEN?.trim();
  const apiKey = process.env.API_KEY?.trim();
  if (sessionToken && apiKey) {
    throw new SettingError('set either SESSION_TOKEN or API_KEY, not both');
  }
  if (sessionToken) {
    return {
      field: 'balanceChanged',
      token: sessionToken,
      query: BALANCE_CHANGED,
      format(data) {
        const event = data.balanceChanged as {
          balanceAvailable: number;
          balanceHeld: number;
          transaction: TransactionFields;
        };
        return `${describeTransaction(event.transaction)}  available ${event.balanceAvailable}  held ${event.balanceHeld}`;
      },
    };
  }
  if (apiKey) {
    return {
      field: 'merchantTransactionPosted',
      token: apiKey,
      query: MERCHANT_TRANSACTION_POSTED,
      format(data) {
        const event = data.merchantTransactionPosted as {
          settlementBalance: number;
          transaction: TransactionFields;
        };
        return `${describeTransaction(event.transaction)}  settlement balance ${event.settlementBalance}`;
      },
    };
  }
  throw new SettingError(
    'SESSION_TOKEN or API_KEY is missing; see the header of examples/dashboard.ts',
  );
}

/** Returns the message of an error, or of the error event a WebSocket emits when it cannot connect. */
function describeError(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message !== '' ? message : String(error);
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;
}

/** Subscribes, prints events until MAX_EVENTS or Ctrl-C, and resolves with the exit code. */
function watch(url: string, subscription: Subscription, maxEvents?: number): Promise<number> {
  let connections = 0;
  let activeSocket: WebSocket | undefined;
  let pongTimer: NodeJS.Timeout | undefined;
  const client: Client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${subscription.token}` },
    keepAlive: KEEP_ALIVE_MS,
    // graphql-ws retries a Forbidden close, but the server sends it for
    // credentials that a retry cannot fix.
    shouldRetry: (event) => isCloseEvent(event) && event.code !== CloseCode.Forbidden,
    on: {
      connected: (socket) => {
        activeSocket = socket as WebSocket;
        connections++;
        if (connections === 1) {
          console.log(
            `connected to ${url}; waiting for ${subscription.field} events; press Ctrl-C to stop`,
          );
        } else {
          // The subscription delivers only live events, so nothing replays the gap.
          console.log('reconnected; events committed while disconnected were not delivered');
        }
      },
      // graphql-ws sends the pings but does nothing when no pong arrives, so
      // a socket that died silently is closed here, which makes it reconnect.
      ping: (received) => {
        if (received) return;
        pongTimer = setTimeout(() => {
          if (activeSocket?.readyState === WebSocket.OPEN) {
            activeSocket.close(PONG_TIMEOUT_CLOSE_CODE, 'Pong timeout');
          }
        }, PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        if (isCloseEvent(event) && event.code !== 1000) {
          console.log(`connection closed (code ${event.code} ${event.reason})`);
        }
      },
    },
  });

  return new Promise((resolve) => {
    let events = 0;
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      clearTimeout(pongTimer);
      process.off('SIGINT', onInterrupt);
      unsubscribe();
      void client.dispose();
      resolve(code);
    };
    const onInterrupt = () => {
      console.log(`stopped after ${events} events`);
      finish(0);
    };
    process.on('SIGINT', onInterrupt);

    const unsubscribe = client.subscribe<Record<string, unknown>>(
      { query: subscription.query },
      {
        next: (result) => {
          if (result.errors?.length) {
            const [first] = result.errors;
            console.error(`error: ${String(first?.extensions?.code)}: ${first?.message}`);
            return;
          }
          events++;
          console.log(subscription.format(result.data ?? {}));
          if (maxEvents !== undefined && events >= maxEvents) finish(0);
        },
        error: (error) => {
          if (finished) return;
          if (
            isCloseEvent(error) &&
            error.code === CloseCode.Forbidden &&
            error.reason !== 'Forbidden'
          ) {
            // The server names the reason, such as too many connections for the caller.
            console.error(
              `error: the server closed the connection (close code 4403): ${error.reason}`,
            );
          } else if (isCloseEvent(error) && error.code === CloseCode.Forbidden) {
            console.error(
              'error: the server rejected the credentials (close code 4403); check SESSION_TOKEN or API_KEY',
            );
          } else if (isCloseEvent(error) && error.code === CloseCode.Unauthorized) {
            // The session ended or the key was revoked: the same outcome as a completed subscription.
            console.error(
              'error: the server ended the subscription: the session ended or the API key was revoked',
            );
          } else if (Array.isArray(error)) {
            const [first] = error as Array<{ message: string; extensions?: { code?: string } }>;
            console.error(`error: ${String(first?.extensions?.code)}: ${first?.message}`);
          } else {
            const detail = isCloseEvent(error)
              ? `close code ${error.code} ${error.reason}`
              : describeError(error);
            console.error(`error: the subscription failed (${detail})`);
          }
          finish(1);
        },
        complete: () => {
          // Unsubscribing after MAX_EVENTS or Ctrl-C also completes.
          if (finished) return;
          console.error(
            'error: the server ended the subscription: the session ended or the API key was revoked',
          );
          finish(1);
        },
      },
    );
  });
}

async function main(): Promise<number> {
  let url: string;
  let subscription: Subscription;
  let maxEvents: number | undefined;
  try {
    url = webSocketUrl(process.env.API_URL || 'http://127.0.0.1:4000/graphql');
    subscription = chooseSubscription();
    maxEvents = maxEventsSetting();
  } catch (error) {
    if (!(error instanceof SettingError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  }
  return watch(url, subscription, maxEvents);
}

void main().then((code) => {
  process.exitCode = code;
});
