// Settlement of authorizations: posting the captures and voids that
// AuthorizationService requests, and the expiries of holds whose time ran out.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Clock } from '../config/clock';
import { pgErrorFields, PG_UNIQUE_VIOLATION } from '../database/pg-errors';
import { sqlFor, type Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type {
  Idempotency,
  PostingGuard,
  PostingRequest,
  PostingResult,
  TransactionRecord,
} from '../ledger/ledger.types';
import {
  readTransaction,
  TRANSACTION_COLUMNS,
  type TransactionRow,
} from '../ledger/transaction-row';
import type { Logger } from '../logging/logger';
import { expiryOf, findSettlement, settlementOf, sourceIsStopped } from './authorization.queries';

/** The services that settling an authorization uses. AuthorizationService passes its own. */
export interface SettlementDependencies {
  ledger: LedgerService;
  clock: Clock;
  logger: Logger;
}

/** Reasons that a capture and a void share for not settling an authorization. */
export type SettlementFailure =
  | { ok: false; code: 'AUTHORIZATION_NOT_FOUND' }
  | { ok: false; code: 'AUTHORIZATION_NOT_PENDING'; settledBy: 'capture' | 'void' }
  | { ok: false; code: 'AUTHORIZATION_EXPIRED'; expiredAt: Date }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

/** The outcome of one expireDue call. */
export interface ExpiryRun {
  /** Due authorizations that the query found. */
  selected: number;
  /** Ids of the authorizations whose hold this call released. */
  expired: string[];
  /** Due authorizations that a capture, a void or another sweep settled first. */
  alreadySettled: number;
  /** Due authorizations whose expiry failed with an unexpected error, which was logged. */
  failed: number;
}

/** An authorization that cannot be settled, and whether its expiry still has to be posted. */
interface Blocker {
  failure: SettlementFailure;
  expiryDue: boolean;
}

type SettlementPosting = Pick<PostingRequest, 'kind' | 'status' | 'amount' | 'releaseHeld'> & {
  idempotency?: Idempotency;
};

const SETTLED_ONCE_INDEX = 'ledger_transaction_settled_once';

/**
 * Posts the settlements of AuthorizationService. Its class comment explains
 * how the account locks and a unique index let each authorization settle once.
 */
export class AuthorizationSettlementService {
  constructor(private readonly deps: SettlementDependencies) {}

  /** Does the work of AuthorizationService.expireDue, which documents it. */
  async expireDue(em: EntityManager, now: Date, limit: number): Promise<ExpiryRun> {
    const rows = await sqlFor(em).query<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ledger_transaction a
        WHERE a.kind = 'authorization' AND a.status = 'pending' AND a.expires_at <= ?::timestamptz
          AND NOT EXISTS (SELECT 1 FROM ledger_transaction s
                           WHERE s.parent_id = a.id AND s.kind IN ('capture', 'void', 'expiry'))
        ORDER BY a.expires_at, a.id
        LIMIT ?`,
      [now.toISOString(), limit],
    );
    const run: ExpiryRun = { selected: rows.length, expired: [], alreadySettled: 0, failed: 0 };
    const failedIds: string[] = [];
    let firstError: unknown;
    for (const row of rows) {
      const authorization = readTransaction(row);
      try {
        if (await this.postExpiry(em, authorization, now.getTime())) {
          run.expired.push(authorization.id);
        } else {
          run.alreadySettled++;
        }
      } catch (error) {
        run.failed++;
        failedIds.push(authorization.id);
        firstError ??= error;
      }
    }
    if (run.failed > 0) {
      this.deps.logger.error(
        { err: firstError, failed: run.failed, authorizationIds: failedIds.slice(0, 10) },
        'posting the expiry of authorizations failed, and the next sweep retries them',
      );
    }
    return run;
  }

  /**
   * Returns why an authorization can no longer be captured or voided, read
   * without locks so that the common failures need no posting. An
   * authorization whose time ran out before any sweep expired it gets its
   * expiry posted here.
   */
  async rejectUnlessPending(
    em: EntityManager,
    authorization: TransactionRecord,
  ): Promise<SettlementFailure | undefined> {
    const blocker = await this.findBlocker(sqlFor(em), authorization, this.deps.clock.now());
    if (!blocker) return undefined;
    if (blocker.expiryDue) await this.postExpiry(em, authorization, this.deps.clock.now());
    return blocker.failure;
  }

  /** Returns why an authorization cannot be settled at `now`, or undefined while it is still pending. */
  private async findBlocker(
    sql: Sql,
    authorization: TransactionRecord,
    now: number,
  ): Promise<Blocker | undefined> {
    const settlement = await findSettlement(sql, authorization.id);
    if (settlement) return { failure: settledFailure(authorization, settlement), expiryDue: false };
    const expiresAt = expiryOf(authorization);
    if (expiresAt.getTime() <= now) {
      return {
        failure: { ok: false, code: 'AUTHORIZATION_EXPIRED', expiredAt: expiresAt },
        expiryDue: true,
      };
    }
    return undefined;
  }

  /**
   * Posts a capture or a void of the authorization. The guard checks again,
   * with both accounts locked, that nothing settled the authorization and
   * that it has not expired, so of concurrent settlements exactly one posts.
   */
  async settle(
    em: EntityManager,
    authorization: TransactionRecord,
    posting: SettlementPosting,
  ): Promise<
    | { ok: true; transaction: TransactionRecord; replayed: boolean }
    | SettlementFailure
    | { ok: false; code: 'INVALID_PREPAID_ID' }
  > {
    let blocker: Blocker | undefined;
    let sourceStopped = false;
    const guard: PostingGuard = async (locked) => {
      blocker = await this.findBlocker(locked, authorization, this.deps.clock.now());
      if (blocker) return { code: 'REJECTED', reason: blocker.failure.code };
      // A capture pays, so it stops once the paying ID is blocked or its
      // wallet frozen, like a charge. A void only releases points.
      if (posting.kind === 'capture' && (await sourceIsStopped(locked, authorization))) {
        sourceStopped = true;
        return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
      }
      return undefined;
    };

    let result: PostingResult;
    try {
      result = await this.deps.ledger.post(em, {
        ...settlementOf(authorization),
        ...posting,
        guard,
      });
    } catch (error) {
      if (!isSecondSettlement(error)) throw error;
      const settlement = await findSettlement(sqlFor(em), authorization.id);
      if (!settlement) throw error;
      // The guard runs under the account locks that every settlement takes,
      // so it should have seen this settlement. The unique index caught it.
      this.deps.logger.warn(
        { authorizationId: authorization.id, kind: posting.kind, settledBy: settlement.kind },
        'the settled-once index rejected a second settlement that the guard did not see',
      );
      return settledFailure(authorization, settlement);
    }

    if (result.ok) return { ok: true, transaction: result.transaction, replayed: result.replayed };
    if (result.code === 'REJECTED' && sourceStopped)
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    if (result.code === 'REJECTED' && blocker) {
      if (blocker.expiryDue) await this.postExpiry(em, authorization, this.deps.clock.now());
      return blocker.failure;
    }
    if (result.code === 'IDEMPOTENCY_KEY_REUSED') return { ok: false, code: result.code };
    throw new Error(`unexpected ${posting.kind} failure ${result.code}`);
  }

  /**
   * Posts the expiry that releases an authorization's hold. Returns false,
   * writing nothing, when a capture, a void or another expiry settled the
   * authorization first.
   */
  private async postExpiry(
    em: EntityManager,
    authorization: TransactionRecord,
    now: number,
  ): Promise<boolean> {
    const expiresAt = expiryOf(authorization);
    if (expiresAt.getTime() > now) {
      throw new Error(
        `authorization ${authorization.id} is not due to expire until ${expiresAt.toISOString()}`,
      );
    }
    const guard: PostingGuard = async (locked) => {
      const settlement = await findSettlement(locked, authorization.id);
      return settlement && { code: 'REJECTED', reason: 'AUTHORIZATION_NOT_PENDING' };
    };
    try {
      const result = await this.deps.ledger.post(em, {
        ...settlementOf(authorization),
        kind: 'expiry',
        status: 'expired',
        amount: authorization.amount,
        guard,
      });
      if (result.ok) return true;
      if (result.code === 'REJECTED') return false;
      throw new Error(`unexpected expiry failure ${result.code}`);
    } catch (error) {
      // A capture, a void or another instance's sweep settled the authorization first,
      // so nothing is left to do.
      if (isSecondSettlement(error)) return false;
      throw error;
    }
  }
}

function settledFailure(
  authorization: TransactionRecord,
  settlement: TransactionRecord,
): SettlementFailure {
  if (settlement.kind === 'expiry') {
    return { ok: false, code: 'AUTHORIZATION_EXPIRED', expiredAt: expiryOf(authorization) };
  }
  if (settlement.kind === 'capture' || settlement.kind === 'void') {
    return { ok: false, code: 'AUTHORIZATION_NOT_PENDING', settledBy: settlement.kind };
  }
  throw new Error(`transaction ${settlement.id} of kind ${settlement.kind} settles nothing`);
}

/** Returns whether the error is the settled-once index rejecting a second capture, void or expiry. */
function isSecondSettlement(error: unknown): boolean {
  const { code, constraint } = pgErrorFields(error);
  return code === PG_UNIQUE_VIOLATION && constraint === SETTLED_ONCE_INDEX;
}
