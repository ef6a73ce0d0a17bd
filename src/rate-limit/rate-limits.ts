import { createHash } from 'node:crypto';
import { Pool } from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from '../graphql/errors';

/** A limit of `points` attempts per `durationSeconds` for one key. */
export interface LimitRule {
  points: number;
  durationSeconds: number;
}

export const DEFAULT_LIMITS = {
  /** Sign-in attempts for one username or e-mail address. */
  loginPerAccount: { points: 10, durationSeconds: 15 * 60 },
  /** Sign-in attempts from one IP address, over all accounts. */
  loginPerIp: { points: 100, durationSeconds: 15 * 60 },
  /** Codes tried against one login challenge, which lives for five minutes. */
  codePerChallenge: { points: 5, durationSeconds: 5 * 60 },
  /** Passwords re-entered by a signed-in member: password change, withdrawal, turning 2FA off. */
  passwordPerAccount: { points: 10, durationSeconds: 15 * 60 },
  /** Two-factor codes tried for one member, at sign-in and for sensitive actions. */
  codePerAccount: { points: 10, durationSeconds: 15 * 60 },
  /** Mails requested for one address: verification, password reset, username reminder. */
  mailPerAddress: { points: 3, durationSeconds: 60 * 60 },
  /** Card-to-wallet transfers started by one member; each answer tells whether an ID exists. */
  transferPerMember: { points: 30, durationSeconds: 60 },
  /** Registrations from one IP address. */
  registrationPerIp: { points: 10, durationSeconds: 60 * 60 },
  /** Balance inquiries by one API key, or by one IP address without a key. */
  inquiryPerCaller: { points: 60, durationSeconds: 60 },
} satisfies Record<string, LimitRule>;

export type LimitName = keyof typeof DEFAULT_LIMITS;

/**
 * Attempt counters shared by every server instance, stored in Postgres by
 * rate-limiter-flexible. Keys are hashed before they are stored, because
 * many of them are e-mail addresses or IP addresses.
 *
 * The counters have a connection pool of their own. Limits are checked while
 * a request holds a connection of the main pool inside a database
 * transaction; sharing that pool would let a burst of such requests take
 * every connection and then wait forever for one more.
 */
export class RateLimits {
  private readonly limiters = new Map<LimitName, RateLimiterPostgres>();
  private readonly pool: Pool;
  /** Called with the limit's name each time it rejects an attempt, as for metrics. */
  onRejected?: (name: LimitName) => void;

  constructor(
    databaseUrl: string,
    overrides: Partial<Record<LimitName, LimitRule>> = {},
    onPoolError: (error: Error) => void = () => undefined,
  ) {
    this.pool = new Pool({ connectionString: databaseUrl, max: 4, idleTimeoutMillis: 30_000 });
    // An idle client whose connection breaks emits 'error' on the pool.
    this.pool.on('error', onPoolError);
    for (const name of Object.keys(DEFAULT_LIMITS) as LimitName[]) {
      const rule = overrides[name] ?? DEFAULT_LIMITS[name];
      this.limiters.set(
        name,
        new RateLimiterPostgres({
          storeClient: this.pool,
          storeType: 'pool',
          tableName: 'rate_limit',
          tableCreated: true,
          // Expired rows are deleted by a timer in each instance.
          clearExpiredByTimeout: true,
          keyPrefix: name,
          points: rule.points,
          duration: rule.durationSeconds,
        }),
      );
    }
  }

  /**
   * Counts one attempt, and throws RATE_LIMITED with the seconds to wait when
   * the key has used up its limit. An attempt over the limit is refused
   * before anything else is checked, so a correct code is refused too.
   */
  async consume(name: LimitName, key: string): Promise<void> {
    try {
      await this.limiter(name).consume(hashKey(key));
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        this.onRejected?.(name);
        throw rateLimited(Math.max(1, Math.ceil(error.msBeforeNext / 1_000)));
      }
      throw error;
    }
  }

  /** Gives back one counted attempt, as for a code that proved right. */
  async refund(name: LimitName, key: string): Promise<void> {
    await this.limiter(name).reward(hashKey(key), 1);
  }

  /** Forgets the attempts of a key, as after a successful sign-in. */
  async reset(name: LimitName, key: string): Promise<void> {
    await this.limiter(name).delete(hashKey(key));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private limiter(name: LimitName): RateLimiterPostgres {
    const limiter = this.limiters.get(name);
    if (!limiter) throw new Error(`no rate limit named ${name}`);
    return limiter;
  }
}

function hashKey(key: string): string {
  return createHash('sha256').update(key.toLowerCase()).digest('base64url');
}
