/**
 * A merchant integration: a balance inquiry, a charge that is retried safely
 * after a network error or a timeout, a partial refund, and a switch over
 * every typed error code of those operations.
 *
 * Run it against a local server (npm start), with a key and a card from
 * `npm run seed`:
 *
 *   API_KEY=mk_… PREPAID_ID='8462 3465 1936 0839' npx ts-node --transpile-only examples/merchant.ts
 *
 * Settings, from environment variables:
 *   API_URL             GraphQL endpoint; default http://127.0.0.1:4000/graphql
 *   API_KEY             merchant API key mk_… with the scopes charge, refund and inquiry; required
 *   PREPAID_ID          prepaid ID to charge: a card, a wallet or a one-time ID; required
 *   CHARGE_AMOUNT       points to charge; default 300
 *   REFUND_AMOUNT       points of that charge to refund; default 100
 *   REQUEST_TIMEOUT_MS  time after which a request is abandoned and retried; default 10000
 *
 * Exits with 0 when every step succeeded, 1 when the server rejected a step
 * or could not be reached, and 2 when a setting is missing or invalid.
 */
import { randomBytes } from 'node:crypto';
import { ClientError, GraphQLClient } from 'graphql-request';

const MAX_ATTEMPTS = 4;
/** Delay before the first retry, in milliseconds. It doubles for each later retry. */
const RETRY_BASE_DELAY_MS = 250;

// The typed errors of the unions ChargeResult and RefundResult in schema.graphql.
type AmountLimitExceededError = {
  __typename: 'AmountLimitExceededError';
  code: 'AMOUNT_LIMIT_EXCEEDED';
  message: string;
  maximum: number;
};
type IdempotencyKeyReusedError = {
  __typename: 'IdempotencyKeyReusedError';
  code: 'IDEMPOTENCY_KEY_REUSED';
  message: string;
};

type ChargeError =
  | AmountLimitExceededError
  | IdempotencyKeyReusedError
  | {
      __typename: 'InsufficientBalanceError';
      code: 'INSUFFICIENT_BALANCE';
      message: string;
      available: number;
    }
  | { __typename: 'InvalidPrepaidIdError'; code: 'INVALID_PREPAID_ID'; message: string };

type RefundError =
  | AmountLimitExceededError
  | IdempotencyKeyReusedError
  | {
      __typename: 'RefundExceedsChargeError';
      code: 'REFUND_EXCEEDS_CHARGE';
      message: string;
      refundable: number;
    }
  | { __typename: 'TransactionNotFoundError'; code: 'TRANSACTION_NOT_FOUND'; message: string };

type ChargeResult =
  | {
      __typename: 'ChargeSuccess';
      balanceAfter: number;
      replayed: boolean;
      transaction: { id: string; amount: number };
    }
  | ChargeError;

type RefundResult =
  | {
      __typename: 'RefundSuccess';
      refundableRemaining: number;
      replayed: boolean;
      transaction: { id: string; amount: number };
    }
  | RefundError;

const BALANCE = `
  query Balance($prepaidId: String!) {
    prepaidBalance(prepaidId: $prepaidId) { valid balance }
  }`;

const CHARGE = `
  mutation Charge($input: ChargeInput!) {
    charge(input: $input) {
      __typename
      ... on ChargeSuccess { balanceAfter replayed transaction { id amount } }
      ... on UserError { code message }
      ... on InsufficientBalanceError { available }
      ... on AmountLimitExceededError { maximum }
    }
  }`;

const REFUND = `
  mutation Refund($input: RefundInput!) {
    refund(input: $input) {
      __typename
      ... on RefundSuccess { refundableRemaining replayed transaction { id amount } }
      ... on UserError { code message }
      ... on RefundExceedsChargeError { refundable }
      ... on AmountLimitExceededError { maximum }
    }
  }`;

/** Raised for a missing or invalid setting. The message names the variable. */
class SettingError extends Error {}

function requiredSetting(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new SettingError(`${name} is missing; see the header of examples/merchant.ts`);
  return value;
}

function positiveIntegerSetting(name: string, defaultValue: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return defaultValue;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new SettingError(`${name} must be a positive whole number, got "${text}"`);
  }
  return value;
}

/** Masks all but the last four digits, because a prepaid ID is a bearer credential. */
function mask(prepaidId: string): string {
  return `**** **** **** ${prepaidId.replace(/[\s-]/g, '').slice(-4)}`;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/**
 * Returns why a failed request may be sent again, or undefined when the
 * server's response is final. A retry is safe only where the request carries
 * an idempotency key or moves no money, because after a network error or a
 * timeout the first attempt may have been carried out.
 */
function retryReason(error: unknown): string | undefined {
  if (error instanceof ClientError) {
    const codes = (error.response.errors ?? []).map((entry) => entry.extensions?.code);
    if (codes.includes('INTERNAL_SERVER_ERROR')) return 'internal server error';
    if ([502, 503, 504].includes(error.response.status)) return `HTTP ${error.response.status}`;
    return undefined;
  }
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return 'timed out';
  }
  // Node's fetch (undici) throws TypeError "fetch failed", with the reason as
  // its cause, for a refused, reset or closed connection.
  if (error instanceof TypeError) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    return `network error: ${cause ? `${error.message}: ${cause}` : error.message}`;
  }
  return undefined;
}

function explainChargeError(error: ChargeError): string {
  switch (error.code) {
    case 'INSUFFICIENT_BALANCE':
      return `only ${error.available} points are available; charge at most that, or ask for another payment method`;
    case 'INVALID_PREPAID_ID':
      return 'the prepaid ID is malformed, unknown, blocked, expired or used up; ask the customer for another one';
    case 'AMOUNT_LIMIT_EXCEEDED':
      return `a single charge may be at most ${error.maximum} points; split the order`;
    case 'IDEMPOTENCY_KEY_REUSED':
      return 'the idempotency key belongs to a different request; use a new key for a new order';
    default:
      return explainUnknownError(error);
  }
}

function explainRefundError(error: RefundError): string {
  switch (error.code) {
    case 'REFUND_EXCEEDS_CHARGE':
      return `at most ${error.refundable} points of the charge can still be refunded`;
    case 'TRANSACTION_NOT_FOUND':
      return 'no charge or capture of this merchant has that transaction id';
    case 'AMOUNT_LIMIT_EXCEEDED':
      return `a single refund may be at most ${error.maximum} points; refund in parts`;
    case 'IDEMPOTENCY_KEY_REUSED':
      return 'the idempotency key belongs to a different request; use a new key for a new refund';
    default:
      return explainUnknownError(error);
  }
}

/** Describes a code that this example does not know, such as one added to the schema later. */
function explainUnknownError(error: never): string {
  const { code, message } = error as { code: string; message: string };
  return `unexpected error code ${code}: ${message}`;
}

/** Describes a GraphQL error response: authentication, scope, input or rate limit. */
function explainClientError(error: ClientError): string {
  const first = error.response.errors?.[0];
  if (!first) return `HTTP ${error.response.status}: ${error.response.body ?? 'no body'}`;
  const code = first.extensions?.code;
  const hints: Record<string, string> = {
    UNAUTHENTICATED: 'check API_KEY, which may be mistyped or revoked',
    FORBIDDEN: 'the API key lacks a scope; create a key with --scopes charge,refund,inquiry',
    BAD_USER_INPUT: 'amounts must be positive whole numbers',
    RATE_LIMITED: `try again in ${String(first.extensions?.retryAfterSeconds)} seconds`,
  };
  const hint = typeof code === 'string' && hints[code] ? ` (${hints[code]})` : '';
  return `${String(code ?? 'GraphQL error')}: ${first.message}${hint}`;
}

interface Settings {
  apiUrl: string;
  apiKey: string;
  prepaidId: string;
  chargeAmount: number;
  refundAmount: number;
  timeoutMs: number;
}

function readSettings(): Settings {
  return {
    apiUrl: process.env.API_URL || 'http://127.0.0.1:4000/graphql',
    apiKey: requiredSetting('API_KEY'),
    prepaidId: requiredSetting('PREPAID_ID'),
    chargeAmount: positiveIntegerSetting('CHARGE_AMOUNT', 300),
    refundAmount: positiveIntegerSetting('REFUND_AMOUNT', 100),
    timeoutMs: positiveIntegerSetting('REQUEST_TIMEOUT_MS', 10_000),
  };
}

/** A GraphQL client with the merchant's key that retries while the outcome of a request is unknown. */
class MerchantApi {
  private readonly client: GraphQLClient;

  constructor(private readonly settings: Settings) {
    this.client = new GraphQLClient(settings.apiUrl, {
      headers: { authorization: `Bearer ${settings.apiKey}` },
    });
  }

  /**
   * Sends one request, and sends it again with the same variables, so with
   * the same idempotency key, after a network error, a timeout or an
   * internal server error. Other errors are thrown at once. Only requests
   * with an idempotency key or without effects may be sent this way.
   */
  async send<T>(
    step: string,
    query: string,
    variables: Record<string, unknown>,
    idempotencyKey?: string,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.client.request<T>({
          document: query,
          variables,
          signal: AbortSignal.timeout(this.settings.timeoutMs),
        });
      } catch (error) {
        const reason = retryReason(error);
        if (!reason) throw error;
        if (attempt === MAX_ATTEMPTS) {
          const advice = idempotencyKey
            ? `its outcome is unknown, so send it again later with the idempotency key ${idempotencyKey}`
            : 'try again later';
          throw new Error(`${step} failed after ${attempt} attempts (${reason}); ${advice}`, {
            cause: error,
          });
        }
        const delay = RETRY_BASE_DELAY_MS * 2 ** (attempt - 1);
        const same = idempotencyKey ? ` with the same idempotency key ${idempotencyKey}` : '';
        console.log(
          `${step}: attempt ${attempt} failed (${reason}); retrying in ${delay} ms${same}`,
        );
        await sleep(delay);
      }
    }
  }

  async printBalance(): Promise<void> {
    const { prepaidId } = this.settings;
    const { prepaidBalance } = await this.send<{
      prepaidBalance: { valid: boolean; balance: number | null } | null;
    }>('balance inquiry', BALANCE, { prepaidId });
    console.log(
      prepaidBalance?.valid
        ? `balance inquiry: ${mask(prepaidId)} is valid with ${prepaidBalance.balance} points available`
        : `balance inquiry: ${mask(prepaidId)} is not valid, so it cannot be charged`,
    );
  }
}

/** Runs the steps and returns the exit code. */
async function run(settings: Settings): Promise<number> {
  const api = new MerchantApi(settings);
  await api.printBalance();

  const orderReference = `order-${Date.now()}`;
  // One key per order: every retry of this charge sends the same key.
  const chargeKey = `${orderReference}-${randomBytes(4).toString('hex')}`;
  console.log(
    `charge: ${settings.chargeAmount} points for ${orderReference}, idempotency key ${chargeKey}`,
  );
  const { charge } = await api.send<{ charge: ChargeResult }>(
    'charge',
    CHARGE,
    {
      input: {
        prepaidId: settings.prepaidId,
        amount: settings.chargeAmount,
        idempotencyKey: chargeKey,
        orderReference,
      },
    },
    chargeKey,
  );
  if (charge.__typename !== 'ChargeSuccess') {
    console.log(`charge rejected with ${charge.code}: ${explainChargeError(charge)}`);
    return 1;
  }
  console.log(
    `charge: charged ${charge.transaction.amount} points; balance after ${charge.balanceAfter}; transaction ${charge.transaction.id}`,
  );
  if (charge.replayed) {
    console.log(
      'charge: the response is the stored result of an earlier attempt (replayed: true), so the points were charged once',
    );
  }

  const refundKey = `${chargeKey}-refund-1`;
  const { refund } = await api.send<{ refund: RefundResult }>(
    'refund',
    REFUND,
    {
      input: {
        transactionId: charge.transaction.id,
        amount: settings.refundAmount,
        idempotencyKey: refundKey,
      },
    },
    refundKey,
  );
  if (refund.__typename !== 'RefundSuccess') {
    console.log(`refund rejected with ${refund.code}: ${explainRefundError(refund)}`);
    return 1;
  }
  console.log(
    `refund: refunded ${refund.transaction.amount} points; ${refund.refundableRemaining} points of the charge can still be refunded; transaction ${refund.transaction.id}`,
  );

  await api.printBalance();
  return 0;
}

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = readSettings();
  } catch (error) {
    if (!(error instanceof SettingError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  }
  try {
    return await run(settings);
  } catch (error) {
    const message =
      error instanceof ClientError ? explainClientError(error) : (error as Error).message;
    console.error(`error: ${message}`);
    return 1;
  }
}

void main().then((code) => {
  process.exitCode = code;
});
