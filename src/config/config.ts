import { bool, cleanEnv, json, makeValidator, port, str, url } from 'envalid';
import { DEFAULT_LIMITS, type LimitName, type LimitRule } from '../rate-limit/rate-limits';
import type { OperationLimits } from '../server/abuse-limits';
import type { SocketLimits } from '../server/socket-limits';

/** Raised when an environment variable is missing or invalid; the message names each variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// Development keys let `npm start` work on a fresh clone. They are public, so
// the server warns at start when it runs in production mode with either of them.
export const DEVELOPMENT_HMAC_KEY =
  '6465762d686d61632d6b65792d646f2d6e6f742d7573652d696e2d70726f6421';
export const DEVELOPMENT_ENCRYPTION_KEY =
  '6465762d656e632d6b65792d2d2d646f2d6e6f742d7573652d696e2d70726f64';
export const DEVELOPMENT_TOTP_KEY =
  '6465762d746f74702d6b65792d646f2d6e6f742d7573652d696e2d70726f6421';

const key256 = makeValidator<Buffer>((input) => {
  if (!/^[0-9a-fA-F]{64}$/.test(input)) {
    throw new Error(
      'expected 64 hexadecimal characters (a 256-bit key); generate one with `openssl rand -hex 32`',
    );
  }
  return Buffer.from(input, 'hex');
});

const tcpPort = makeValidator<number>((input) => {
  const value = Number(input);
  if (!/^\d+$/.test(input) || value > 65_535) {
    throw new Error(`expected a TCP port from 0 to 65535, got "${input}"`);
  }
  return value;
});

const positiveInteger = makeValidator<number>((input) => {
  const value = Number(input);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`expected a positive whole number, got "${input}"`);
  }
  return value;
});

const metricsToken = makeValidator<string>((input) => {
  if (input.length < 16)
    throw new Error('expected at least 16 characters; generate one with `openssl rand -hex 16`');
  return input;
});

const specs = {
  NODE_ENV: str({ choices: ['development', 'production', 'test'], default: 'development' }),
  HOST: str({ default: '127.0.0.1', desc: 'Address the HTTP server binds to' }),
  PORT: tcpPort({ default: 4000, desc: 'HTTP and WebSocket port; 0 picks a free one' }),
  LOG_LEVEL: str({
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
  }),
  DATABASE_URL: url({
    default: undefined,
    desc: 'Postgres URL; unset starts an embedded Postgres',
  }),
  DATABASE_POOL_MAX: positiveInteger({ default: 10 }),
  DATABASE_LOCK_TIMEOUT_MS: positiveInteger({ default: 5_000 }),
  EMBEDDED_POSTGRES_PORT: port({ default: 5488 }),
  EMBEDDED_POSTGRES_DIR: str({ default: '.data/postgres' }),
  MIGRATE_ON_START: bool({ default: true }),
  PREPAID_ID_HMAC_KEY: key256({ default: Buffer.from(DEVELOPMENT_HMAC_KEY, 'hex') }),
  PREPAID_ID_ENCRYPTION_KEY: key256({ default: Buffer.from(DEVELOPMENT_ENCRYPTION_KEY, 'hex') }),
  MAX_TRANSACTION_AMOUNT: positiveInteger({ default: 1_000_000 }),
  SHUTDOWN_TIMEOUT_MS: positiveInteger({ default: 10_000 }),
  EVENT_POLL_INTERVAL_MS: positiveInteger({ default: 1_000 }),
  TRUST_PROXY: bool({ default: false }),
  METRICS_TOKEN: metricsToken({ default: undefined }),
  BODY_LIMIT_BYTES: positiveInteger({ default: 100_000 }),
  ENABLE_INTROSPECTION: bool({ default: undefined }),
  TOTP_ENCRYPTION_KEY: key256({ default: Buffer.from(DEVELOPMENT_TOTP_KEY, 'hex') }),
  SMTP_URL: url({
    default: undefined,
    desc: 'smtp:// or smtps:// URL; unset keeps mails in the outbox',
  }),
  MAIL_FROM: str({ default: 'Prepaid Wallet <no-reply@wallet.invalid>' }),
  APP_URL: url({
    default: 'http://127.0.0.1:3000',
    desc: 'Base URL of the member app, for links in mails',
  }),
  SESSION_IDLE_MINUTES: positiveInteger({ default: 30 }),
  SESSION_MAX_HOURS: positiveInteger({ default: 24 }),
  MAX_WALLET_BALANCE: positiveInteger({
    default: 1_000_000,
    desc: 'Largest balance a wallet may hold, in points',
  }),
  AUTHORIZATION_HOLD_MINUTES: positiveInteger({ default: 7 * 24 * 60 }),
  ONE_TIME_ID_DEFAULT_MINUTES: positiveInteger({ default: 10 }),
  ONE_TIME_ID_MAX_MINUTES: positiveInteger({ default: 60 }),
  GRAPHQL_MAX_DEPTH: positiveInteger({ default: 12 }),
  GRAPHQL_MAX_COST: positiveInteger({ default: 5_000 }),
  GRAPHQL_MAX_ALIASES: positiveInteger({ default: 30 }),
  GRAPHQL_MAX_ROOT_FIELDS: positiveInteger({ default: 30 }),
  GRAPHQL_MAX_DIRECTIVES: positiveInteger({ default: 10 }),
  GRAPHQL_MAX_TOKENS: positiveInteger({ default: 3_000 }),
  WS_MAX_OPERATIONS_PER_CONNECTION: positiveInteger({ default: 25 }),
  WS_MAX_CONNECTIONS_PER_MEMBER: positiveInteger({ default: 10 }),
  WS_MAX_CONNECTIONS_PER_MERCHANT: positiveInteger({ default: 1_000 }),
  RATE_LIMITS: json<Partial<Record<LimitName, LimitRule>>>({
    default: {},
    desc: 'JSON overrides of rate limits, e.g. {"loginPerIp":{"points":50,"durationSeconds":900}}',
  }),
};

export interface AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  host: string;
  port: number;
  logLevel: string;
  /** Unset means that the caller starts an embedded Postgres and fills this in. */
  databaseUrl: string | undefined;
  databasePoolMax: number;
  /** Longest wait for a lock; the ledger retries a posting whose wait timed out. */
  databaseLockTimeoutMs: number;
  embeddedPostgres: { port: number; dir: string };
  migrateOnStart: boolean;
  prepaidIdHmacKey: Buffer;
  prepaidIdEncryptionKey: Buffer;
  /** Upper bound on a single charge, refund, authorization or credit, in points. */
  maxTransactionAmount: number;
  shutdownTimeoutMs: number;
  /** Fallback poll of the event outbox, for wake-ups lost with a dropped LISTEN connection. */
  eventPollIntervalMs: number;
  trustProxy: boolean;
  /** Bearer token that /metrics requires; unset leaves it open. */
  metricsToken?: string;
  bodyLimitBytes: number;
  introspection: boolean;
  /** AES-256-GCM key for TOTP secrets; recovery codes are hashed with a key derived from it. */
  totpEncryptionKey: Buffer;
  /** Unset: mails are kept in the mail outbox table and not sent. */
  smtpUrl: string | undefined;
  mailFrom: string;
  appUrl: string;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  /** Largest balance a wallet may reach through top-ups and credits, in points. */
  maxWalletBalance: number;
  /** How long an authorization holds its amount before it lapses. */
  authorizationHoldMinutes: number;
  oneTimeIdDefaultMinutes: number;
  oneTimeIdMaxMinutes: number;
  /** Largest operations the API executes, over HTTP and WebSocket. */
  operationLimits: OperationLimits;
  /** Limits of graphql-ws connections, per server process. */
  socketLimits: SocketLimits;
  /** Overrides of the default rate limits, by limit name. */
  rateLimits: Partial<Record<LimitName, LimitRule>>;
}

/**
 * Reads and validates the configuration from environment variables.
 * Throws ConfigError naming every bad variable and what it expects.
 */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): AppConfig {
  // An empty variable counts as unset, as `VAR=` in an env file or a compose
  // file's `${VAR:-}` produces one.
  const present = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== ''),
  );
  const env = cleanEnv(present, specs, {
    reporter: ({ errors }) => {
      const problems = Object.entries(errors).map(
        ([name, error]) => `${name}: ${(error as Error).message}`,
      );
      if (problems.length > 0) {
        throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
      }
    },
  });

  return {
    nodeEnv: env.NODE_ENV as AppConfig['nodeEnv'],
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolMax: env.DATABASE_POOL_MAX,
    databaseLockTimeoutMs: env.DATABASE_LOCK_TIMEOUT_MS,
    embeddedPostgres: { port: env.EMBEDDED_POSTGRES_PORT, dir: env.EMBEDDED_POSTGRES_DIR },
    migrateOnStart: env.MIGRATE_ON_START,
    prepaidIdHmacKey: env.PREPAID_ID_HMAC_KEY,
    prepaidIdEncryptionKey: env.PREPAID_ID_ENCRYPTION_KEY,
    maxTransactionAmount: env.MAX_TRANSACTION_AMOUNT,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    eventPollIntervalMs: env.EVENT_POLL_INTERVAL_MS,
    trustProxy: env.TRUST_PROXY,
    metricsToken: env.METRICS_TOKEN,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    introspection: env.ENABLE_INTROSPECTION ?? env.NODE_ENV !== 'production',
    totpEncryptionKey: env.TOTP_ENCRYPTION_KEY,
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM,
    appUrl: env.APP_URL.replace(/\/+$/, ''),
    sessionIdleMinutes: env.SESSION_IDLE_MINUTES,
    sessionMaxHours: env.SESSION_MAX_HOURS,
    maxWalletBalance: env.MAX_WALLET_BALANCE,
    authorizationHoldMinutes: env.AUTHORIZATION_HOLD_MINUTES,
    oneTimeIdDefaultMinutes: env.ONE_TIME_ID_DEFAULT_MINUTES,
    oneTimeIdMaxMinutes: env.ONE_TIME_ID_MAX_MINUTES,
    operationLimits: {
      maxDepth: env.GRAPHQL_MAX_DEPTH,
      maxCost: env.GRAPHQL_MAX_COST,
      maxAliases: env.GRAPHQL_MAX_ALIASES,
      maxRootFields: env.GRAPHQL_MAX_ROOT_FIELDS,
      maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: env.GRAPHQL_MAX_TOKENS,
    },
    socketLimits: {
      operationsPerSocket: env.WS_MAX_OPERATIONS_PER_CONNECTION,
      socketsPerMember: env.WS_MAX_CONNECTIONS_PER_MEMBER,
      socketsPerMerchant: env.WS_MAX_CONNECTIONS_PER_MERCHANT,
    },
    rateLimits: checkRateLimits(env.RATE_LIMITS),
  };
}

function checkRateLimits(
  overrides: Partial<Record<LimitName, LimitRule>>,
): Partial<Record<LimitName, LimitRule>> {
  for (const [name, rule] of Object.entries(overrides)) {
    if (!(name in DEFAULT_LIMITS)) {
      throw new ConfigError(
        `Invalid configuration: RATE_LIMITS: unknown limit "${name}"; known limits are ${Object.keys(DEFAULT_LIMITS).join(', ')}`,
      );
    }
    if (
      !Number.isSafeInteger(rule?.points) ||
      rule.points < 1 ||
      !Number.isSafeInteger(rule.durationSeconds) ||
      rule.durationSeconds < 1
    ) {
      throw new ConfigError(
        `Invalid configuration: RATE_LIMITS: ${name} needs positive whole numbers "points" and "durationSeconds"`,
      );
    }
  }
  return overrides;
}

/** Lists the settings that are unsafe in production, for a warning at start. */
export function productionWarnings(config: AppConfig): string[] {
  if (config.nodeEnv !== 'production') return [];
  const warnings: string[] = [];
  if (config.prepaidIdHmacKey.equals(Buffer.from(DEVELOPMENT_HMAC_KEY, 'hex'))) {
    warnings.push('PREPAID_ID_HMAC_KEY is the public development key; set a secret key');
  }
  if (config.prepaidIdEncryptionKey.equals(Buffer.from(DEVELOPMENT_ENCRYPTION_KEY, 'hex'))) {
    warnings.push('PREPAID_ID_ENCRYPTION_KEY is the public development key; set a secret key');
  }
  if (config.totpEncryptionKey.equals(Buffer.from(DEVELOPMENT_TOTP_KEY, 'hex'))) {
    warnings.push('TOTP_ENCRYPTION_KEY is the public development key; set a secret key');
  }
  if (!config.smtpUrl) {
    warnings.push('SMTP_URL is unset, so mails are kept in the outbox and not sent');
  }
  if (!config.metricsToken) {
    warnings.push('METRICS_TOKEN is unset, so /metrics answers anyone who reaches the port');
  }
  return warnings;
}
