import type { EntityManager } from '@mikro-orm/postgresql';
import type { Clock } from '../config/clock';
import { pgErrorFields, PG_UNIQUE_VIOLATION } from '../database/pg-errors';
import { sqlFor, type Sql } from '../database/sql';
import { findByIdempotencyKey } from '../ledger/idempotency';
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
import { balanceShownToMerchant, canPay, paymentGuard } from '../prepaid/payment-guard';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { MerchantService } from './merchant.service';
import { fingerprint } from './payment.service';

export interface AuthorizationDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  merchants: MerchantService;
  clock: Clock;
  logger: Logger;
  maxTransactionAmount: number;
  holdMinutes: number;
}

export interface AuthorizeRequest {
  prepaidId: string;
  amount: number;
  idempotencyKey: string;
  orderReference: string;
  description?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface CaptureRequest {
  /** Database id of the authorization. */
  authorizationId: string;
  /** Omitted: capture the whole held amount. */
  amount?: number | null;
  idempotencyKey?: string | null;
}

export interface VoidRequest {
  /** Database id of the authorization. */
  authorizationId: string;
  idempotencyKey?: string | null;
}

export type AuthorizeOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean }
  | { ok: false; code: 'INVALID_PREPAID_ID' }
  | { ok: false; code: 'AMOUNT_LIMIT_EXCEEDED'; maximum: number }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

/** Reasons that a capture and a void share for not settling an authorization. */
export type SettlementFailure =
  | { ok: false; code: 'AUTHORIZATION_NOT_FOUND' }
  | { ok: false; code: 'AUTHORIZATION_NOT_PENDING'; settledBy: 'capture' | 'void' }
  | { ok: false; code: 'AUTHORIZATION_EXPIRED'; expiredAt: Date }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

export type CaptureOutcome =
  | {
      ok: true;
      transaction: TransactionRecord;
      released: number;
      replayed: boolean;
      balanceAfter: number;
    }
  | { ok: false; code: 'CAPTURE_EXCEEDS_AUTHORIZATION'; held: number }
  | { ok: false; code: 'INVALID_PREPAID_ID' }
  | SettlementFailure;

export type VoidOutcome =
  { ok: true; transaction: TransactionRecord; replayed: boolean } | SettlementFailure;

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
const SETTLEMENT_KINDS = ['capture', 'void', 'expiry'] as const;
const DEFAULT_EXPIRY_BATCH_SIZE = 100;

/**
 * Two-step payments: authorize (hold), capture, void, and expiry of holds.
 *
 * An authorization is a pending posting that holds its amount on the prepaid
 * ID's account. It is settled exactly once, by a capture, a void or an
 * expiry, each a posting whose parent is the authorization. All of them post
 * between the same two accounts, so the ledger's account locks serialise them
 * and a guard sees every earlier settlement. The unique index
 * ledger_transaction_settled_once rejects a second settlement even if a guard
 * missed one.
 */
export class AuthorizationService {
  constructor(private readonly deps: AuthorizationDependencies) {}

  /** Holds an amount on a prepaid ID for the merchant until `holdMinutes` from now. */
  async authorize(
    em: EntityManager,
    merchantId: string,
    request: AuthorizeRequest,
  ): Promise<AuthorizeOutcome> {
    const { ledger, prepaidIds, merchants, clock, maxTransactionAmount } = this.deps;
    const sql = sqlFor(em);
    const scope = merchantScope(merchantId);
    const prepaid = await prepaidIds.resolve(sql, request.prepaidId);
    // An unknown ID still gets a fingerprint, so that reusing a key with a
    // mistyped ID is reported as a reused key rather than as a replay.
    const idHash = prepaid?.lookupHash.toString('hex') ?? `invalid:${request.prepaidId}`;
    const requestFingerprint = fingerprint([
      'authorize',
      idHash,
      request.amount,
      request.orderReference,
      request.description ?? null,
      request.metadata ?? null,
    ]);

    // A retry returns the first result even if the ID was blocked or the hold settled since.
    const earlier = await findByIdempotencyKey(sql, scope, request.idempotencyKey);
    if (earlier) {
      if (!earlier.fingerprint.equals(requestFingerprint)) {
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      }
      return { ok: true, transaction: earlier.transaction, replayed: true };
    }

    if (request.amount > maxTransactionAmount) {
      return { ok: false, code: 'AMOUNT_LIMIT_EXCEEDED', maximum: maxTransactionAmount };
    }
    if (!prepaid || !canPay(prepaid, request.amount, clock.now())) {
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    }

    const result = await ledger.post(em, {
      kind: 'authorization',
      status: 'pending',
      debitAccountId: prepaid.ledgerAccountId,
      creditAccountId: await merchants.settlementAccountId(sql, merchantId),
      amount: request.amount,
      expiresAt: new Date(clock.now() + this.deps.holdMinutes * 60_000),
      merchantId,
      prepaidIdId: prepaid.id,
      orderReference: request.orderReference,
      description: request.description ?? null,
      metadata: request.metadata ?? null,
      idempotency: { scope, key: request.idempotencyKey, fingerprint: requestFingerprint },
      // Spends a one-time ID in the same database transaction as the hold.
      guard: paymentGuard(prepaidIds, prepaid, request.amount, clock),
    });
    return toAuthorizeOutcome(result);
  }

  /**
   * Moves the captured amount (by default all of it) from the prepaid ID to
   * the merchant and releases the whole hold in the same posting.
   */
  async capture(
    em: EntityManager,
    merchantId: string,
    request: CaptureRequest,
  ): Promise<CaptureOutcome> {
    const sql = sqlFor(em);
    const idempotency = request.idempotencyKey
      ? {
          scope: merchantScope(merchantId),
          key: request.idempotencyKey,
          fingerprint: fingerprint(['capture', request.authorizationId, request.amount ?? null]),
        }
      : undefined;
    if (idempotency) {
      const earlier = await findByIdempotencyKey(sql, idempotency.scope, idempotency.key);
      if (earlier) {
        if (!earlier.fingerprint.equals(idempotency.fingerprint)) {
          return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
        }
        const held = await heldAmountOf(sql, earlier.transaction.parentId!);
        const released = held - earlier.transaction.amount;
        const balanceAfter = await balanceShownToMerchant(sql, earlier.transaction);
        return {
          ok: true,
          transaction: earlier.transaction,
          released,
          replayed: true,
          balanceAfter,
        };
      }
    }

    const authorization = await findAuthorization(sql, merchantId, request.authorizationId);
    if (!authorization) return { ok: false, code: 'AUTHORIZATION_NOT_FOUND' };
    const unsettleable = await this.rejectUnlessPending(em, authorization);
    if (unsettleable) return unsettleable;
    const amount = request.amount ?? authorization.amount;
    if (amount > authorization.amount) {
      return { ok: false, code: 'CAPTURE_EXCEEDS_AUTHORIZATION', held: authorization.amount };
    }

    const outcome = await this.settle(em, authorization, {
      kind: 'capture',
      status: 'posted',
      amount,
      releaseHeld: authorization.amount,
      idempotency,
    });
    if (!outcome.ok) return outcome;
    return {
      ...outcome,
      released: authorization.amount - outcome.transaction.amount,
      balanceAfter: await balanceShownToMerchant(sqlFor(em), outcome.transaction),
    };
  }

  /** Releases the whole hold of an authorization without moving any points. */
  async voidAuthorization(
    em: EntityManager,
    merchantId: string,
    request: VoidRequest,
  ): Promise<VoidOutcome> {
    const sql = sqlFor(em);
    const idempotency = request.idempotencyKey
      ? {
          scope: merchantScope(merchantId),
          key: request.idempotencyKey,
          fingerprint: fingerprint(['void', request.authorizationId]),
        }
      : undefined;
    if (idempotency) {
      const earlier = await findByIdempotencyKey(sql, idempotency.scope, idempotency.key);
      if (earlier) {
        if (!earlier.fingerprint.equals(idempotency.fingerprint)) {
          return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
        }
        return { ok: true, transaction: earlier.transaction, replayed: true };
      }
    }

    const authorization = await findAuthorization(sql, merchantId, request.authorizationId);
    if (!authorization) return { ok: false, code: 'AUTHORIZATION_NOT_FOUND' };
    const unsettleable = await this.rejectUnlessPending(em, authorization);
    if (unsettleable) return unsettleable;

    const outcome = await this.settle(em, authorization, {
      kind: 'void',
      status: 'voided',
      amount: authorization.amount,
      idempotency,
    });
    // Only a capture checks the paying ID; a void always may release a hold.
    if (!outcome.ok && outcome.code === 'INVALID_PREPAID_ID')
      throw new Error('a void was rejected as a payment');
    return outcome;
  }

  /**
   * Releases the holds of up to `limit` authorizations whose `expires_at` is
   * at or before `now` and that nothing settled, oldest first. Several
   * instances may run this at once. An authorization that another run or a
   * capture settled first is counted in `alreadySettled`. An unexpected error
   * on one authorization is logged once per call and does not stop the others.
   */
  async expireDue(
    em: EntityManager,
    now: Date = new Date(this.deps.clock.now()),
    limit = DEFAULT_EXPIRY_BATCH_SIZE,
  ): Promise<ExpiryRun> {
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
  private async rejectUnlessPending(
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
  private async settle(
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

function merchantScope(merchantId: string): string {
  return `merchant:${merchantId}`;
}

/** Returns the fields that a settlement copies from its authorization, including its two accounts. */
function settlementOf(authorization: TransactionRecord) {
  return {
    debitAccountId: authorization.debitAccountId,
    creditAccountId: authorization.creditAccountId,
    merchantId: authorization.merchantId,
    prepaidIdId: authorization.prepaidIdId,
    parentId: authorization.id,
    orderReference: authorization.orderReference,
  };
}

function expiryOf(authorization: TransactionRecord): Date {
  // A CHECK constraint gives every pending posting an expires_at.
  if (!authorization.expiresAt) {
    throw new Error(`authorization ${authorization.id} has no expires_at`);
  }
  return authorization.expiresAt;
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

/** Finds the merchant's authorization by id. Another merchant's authorization is not found. */
async function findAuthorization(
  sql: Sql,
  merchantId: string,
  authorizationId: string,
): Promise<TransactionRecord | undefined> {
  const row = await sql.one<TransactionRow>(
    `SELECT ${TRANSACTION_COLUMNS} FROM ledger_transaction
      WHERE id = ? AND merchant_id = ? AND kind = 'authorization'`,
    [authorizationId, merchantId],
  );
  return row && readTransaction(row);
}

/** Finds the capture, void or expiry that settled an authorization, if one did. */
async function findSettlement(
  sql: Sql,
  authorizationId: string,
): Promise<TransactionRecord | undefined> {
  const row = await sql.one<TransactionRow>(
    `SELECT ${TRANSACTION_COLUMNS} FROM ledger_transaction
      WHERE parent_id = ? AND kind IN (?, ?, ?)`,
    [authorizationId, ...SETTLEMENT_KINDS],
  );
  return row && readTransaction(row);
}

async function heldAmountOf(sql: Sql, authorizationId: string): Promise<number> {
  const row = await sql.one<{ amount: string }>(
    'SELECT amount FROM ledger_transaction WHERE id = ?',
    [authorizationId],
  );
  if (!row) throw new Error(`authorization ${authorizationId} does not exist`);
  return Number(row.amount);
}

function toAuthorizeOutcome(result: PostingResult): AuthorizeOutcome {
  if (result.ok) return result;
  switch (result.code) {
    case 'INSUFFICIENT_BALANCE':
      return { ok: false, code: result.code, available: result.available };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ok: false, code: result.code };
    case 'REJECTED':
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    default:
      throw new Error(`unexpected authorization failure ${result.code}`);
  }
}

/**
 * Whether the ID that an authorization was made with has been blocked, or
 * its wallet frozen or closed, since. A retired ID (rotated away) does not
 * stop a capture: the hold is on the wallet, which still pays.
 */
async function sourceIsStopped(sql: Sql, authorization: TransactionRecord): Promise<boolean> {
  if (!authorization.prepaidIdId) return false;
  const row = await sql.one<{ status: string; wallet_status: string | null }>(
    `SELECT p.status, w.status AS wallet_status
       FROM prepaid_id p LEFT JOIN wallet w ON w.ledger_account_id = p.ledger_account_id
      WHERE p.id = ?`,
    [authorization.prepaidIdId],
  );
  return row?.status === 'blocked' || (row?.wallet_status ?? 'active') !== 'active';
}
