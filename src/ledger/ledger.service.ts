import type { EntityManager } from '@mikro-orm/postgresql';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  isRetryableDatabaseError,
  pgErrorFields,
  PG_UNIQUE_VIOLATION,
} from '../database/pg-errors';
import { withSession, type Session, type Sql } from '../database/sql';
import type { Logger } from '../logging/logger';
import { AccountLocks, isSharedKind } from './account-locks';
import type { LedgerAccountKind } from './ledger-account.entity';
import type { TransactionStatus } from './ledger-transaction.entity';
import type {
  PostingFailure,
  PostingRequest,
  PostingResult,
  TransactionRecord,
} from './ledger.types';
import { readAccounts, writePosting, type StatementRunner } from './posting-statements';

const IDEMPOTENCY_INDEX = 'ledger_transaction_idempotency_unique';

/** Raised inside the database transaction to roll it back with an expected failure. */
class PostingAborted extends Error {
  constructor(readonly failure: PostingFailure) {
    super(failure.code);
  }
}

export interface LedgerServiceOptions {
  logger: Logger;
  /** Called after each commit that wrote an event, to wake the event relay. */
  onCommitted?: () => void;
  /** How often a retryable database error (deadlock, serialization, lock timeout) is retried. */
  maxRetries?: number;
  /** Called with each posting's kind and result: posted, replayed, a failure code, or error. */
  onPosted?: (kind: string, result: string) => void;
}

interface LockPlan {
  /** Accounts locked before they are read. */
  early: string[];
  /** An account that the writing statement locks before it writes. */
  late?: string;
}

/** Rows that a caller writes in the database transaction of a new posting, such as an audit entry. */
export type RowsWriter = (sql: Sql, transaction: TransactionRecord) => Promise<void>;

/**
 * The only code that changes ledger balances.
 *
 * Each posting runs in one database transaction. It takes advisory locks on
 * both accounts in a global order (see AccountLocks), so two postings never
 * deadlock. Then it reads the accounts, checks the rules, and in a single
 * statement updates both balances and inserts the ledger transaction and its
 * outbox event.
 *
 * The locks are advisory rather than row locks because a row lock would
 * assign the transaction id (xid) before the wait, while an advisory lock
 * does not. Taking every lock before the first write means that of two
 * postings on a shared account, the one that commits first also has the
 * lower xid, which is the order in which the outbox delivers events.
 *
 * A stored-value account paying a shared one (a charge into a merchant's
 * settlement account) takes the shared account's lock in the writing
 * statement itself, before its first write: the shared account's balance
 * decides nothing, and its lock is then held only for that statement and
 * the commit, so one busy merchant serialises as little as possible.
 */
export class LedgerService {
  private readonly maxRetries: number;
  private readonly locks = new AccountLocks();

  constructor(private readonly options: LedgerServiceOptions) {
    this.maxRetries = options.maxRetries ?? 3;
  }

  /**
   * Posts one transaction in a database transaction of its own, retrying
   * transient failures. `writeRows`, if given, runs in the same database
   * transaction for a new posting (not for a replay), so that neither
   * commits without the other.
   */
  async post(
    em: EntityManager,
    request: PostingRequest,
    writeRows?: RowsWriter,
  ): Promise<PostingResult> {
    validateRequest(request);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await withSession(em, (session) =>
          this.postInSession(session, request, writeRows),
        );
        if (result.ok && !result.replayed) this.options.onCommitted?.();
        this.report(request, result);
        return result;
      } catch (error) {
        if (error instanceof PostingAborted) {
          const failure: PostingResult = { ok: false, ...error.failure };
          this.report(request, failure);
          return failure;
        }
        const { code, constraint } = pgErrorFields(error);
        // A concurrent request with the same idempotency key committed first:
        // the next attempt finds its transaction and replays or rejects it.
        const keyTaken = code === PG_UNIQUE_VIOLATION && constraint === IDEMPOTENCY_INDEX;
        if ((keyTaken || isRetryableDatabaseError(error)) && attempt <= this.maxRetries) {
          this.options.logger.warn(
            { code, constraint, attempt, kind: request.kind },
            'retrying ledger posting after a transient database error',
          );
          await sleep(keyTaken ? 0 : 5 * attempt + Math.random() * 10);
          continue;
        }
        this.report(request, undefined);
        throw error;
      }
    }
  }

  /**
   * Posts inside a database transaction that the caller owns, for callers
   * that must write other rows atomically with the money. Throws
   * PostingAborted on an expected failure, so the caller's transaction rolls
   * back; the caller calls announceCommit() after its commit.
   */
  async postWithin(sql: Sql, request: PostingRequest): Promise<PostingResult> {
    validateRequest(request);
    try {
      const plan = await this.planLocks(sql, request);
      await this.locks.lock(sql, plan.early);
      const result = await this.checkAndWrite(sql, request, plan, (text, params) =>
        sql.query(text, params),
      );
      this.report(request, result);
      return result;
    } catch (error) {
      this.report(
        request,
        error instanceof PostingAborted ? { ok: false, ...error.failure } : undefined,
      );
      throw error;
    }
  }

  /** Passes a posting's outcome to onPosted; `undefined` stands for an unexpected error. */
  private report(request: PostingRequest, result: PostingResult | undefined): void {
    let outcome: string;
    if (!result) outcome = 'error';
    else if (!result.ok) outcome = result.code;
    else outcome = result.replayed ? 'replayed' : 'posted';
    this.options.onPosted?.(request.kind, outcome);
  }

  /**
   * Runs a posting's database transaction on a session of its own in as
   * few round trips as its locks allow: BEGIN goes with the first locks, and
   * COMMIT with the writing statement unless the caller has rows to write.
   */
  private async postInSession(
    session: Session,
    request: PostingRequest,
    writeRows?: RowsWriter,
  ): Promise<PostingResult> {
    const plan = await this.planLocks(session.sql, request);
    const locking = this.locks.lockStatement(plan.early);
    await session.script(`BEGIN; ${locking.text}`, locking.params);
    let committed = false;
    const result = await this.checkAndWrite(session.sql, request, plan, async (text, params) => {
      if (writeRows) return session.sql.query(text, params);
      const rows = await session.script(`${text}; COMMIT`, params);
      committed = true;
      return rows;
    });
    if (writeRows && result.ok && !result.replayed) {
      await writeRows(session.sql, result.transaction);
    }
    // A replay wrote nothing, so ending it either way is the same.
    if (!committed) await session.script('COMMIT');
    return result;
  }

  /**
   * Returns which accounts to lock before reading them, and which one the
   * writing statement locks: a shared account credited by a stored-value
   * one, whose balance decides nothing.
   */
  private async planLocks(sql: Sql, request: PostingRequest): Promise<LockPlan> {
    const { debitAccountId, creditAccountId } = request;
    const kinds = await this.locks.kindsOf(sql, [debitAccountId, creditAccountId]);
    const lockCreditLate =
      !isSharedKind(kinds.get(debitAccountId)!) && isSharedKind(kinds.get(creditAccountId)!);
    return lockCreditLate
      ? { early: [debitAccountId], late: creditAccountId }
      : { early: [debitAccountId, creditAccountId] };
  }

  /** Reads the locked accounts, replays a known idempotency key, checks the rules and writes. */
  private async checkAndWrite(
    sql: Sql,
    request: PostingRequest,
    plan: LockPlan,
    execute: StatementRunner,
  ): Promise<PostingResult> {
    const { accounts, earlier } = await readAccounts(sql, request);
    if (earlier && request.idempotency) {
      if (!earlier.fingerprint.equals(request.idempotency.fingerprint)) {
        throw new PostingAborted({ code: 'IDEMPOTENCY_KEY_REUSED' });
      }
      return { ok: true, transaction: earlier.transaction, replayed: true };
    }

    const status = statusOf(request);
    // The guard runs first: a prepaid ID retired or blocked meanwhile must be
    // reported as such, not as a lack of funds.
    if (request.guard) {
      const failure = await request.guard(sql, accounts);
      if (failure) throw new PostingAborted(failure);
    }

    // Releasing a hold (void, expiry) needs no funds; moving or holding points does.
    const spends = status === 'posted' || status === 'pending';
    if (spends && !isSharedKind(accounts.debit.kind)) {
      const available =
        accounts.debit.balancePosted - accounts.debit.balanceHeld + (request.releaseHeld ?? 0);
      if (available < request.amount) {
        throw new PostingAborted({ code: 'INSUFFICIENT_BALANCE', available });
      }
    }
    const transaction = await writePosting(execute, request, status, { lockFirst: plan.late });
    return { ok: true, transaction, replayed: false };
  }

  /** Opens a ledger account with zero balances and returns its id. */
  async openAccount(sql: Sql, kind: LedgerAccountKind, merchantId?: string): Promise<string> {
    const row = await sql.one<{ id: string }>(
      'INSERT INTO ledger_account (kind, merchant_id) VALUES (?, ?) RETURNING id',
      [kind, merchantId ?? null],
    );
    const id = String(row!.id);
    this.locks.remember(id, kind);
    return id;
  }

  /** Returns the id of the single operator account of the given kind. */
  async operatorAccountId(
    sql: Sql,
    kind: 'issuance' | 'forfeiture' | 'adjustment',
  ): Promise<string> {
    const row = await sql.one<{ id: string }>('SELECT id FROM ledger_account WHERE kind = ?', [
      kind,
    ]);
    if (!row) throw new Error(`operator account "${kind}" is missing; run the migrations`);
    return row.id;
  }

  /**
   * Wakes the event relay after the caller committed a database transaction
   * in which it used postWithin; post() does this by itself.
   */
  announceCommit(): void {
    this.options.onCommitted?.();
  }

  /**
   * Takes the advisory locks of the given accounts in the global order, for
   * callers that must hold an account still across several statements (a
   * withdrawal reads the balance it forfeits). Locks are released at the end
   * of the database transaction; taking one twice is harmless.
   */
  async lockAccounts(sql: Sql, accountIds: string[]): Promise<void> {
    await this.locks.lock(sql, accountIds);
  }
}

export { PostingAborted };

function statusOf(request: PostingRequest): TransactionStatus {
  return request.status ?? 'posted';
}

function validateRequest(request: PostingRequest): void {
  if (!Number.isSafeInteger(request.amount) || request.amount <= 0) {
    throw new RangeError(`posting amount must be a positive safe integer, got ${request.amount}`);
  }
  if (request.debitAccountId === request.creditAccountId) {
    throw new RangeError('a posting needs two different accounts');
  }
  if ((request.status === 'pending') !== request.expiresAt instanceof Date) {
    throw new RangeError(
      'a pending posting needs expiresAt, and only a pending posting may have it',
    );
  }
  const release = request.releaseHeld ?? 0;
  if (!Number.isSafeInteger(release) || release < 0) {
    throw new RangeError(`releaseHeld must be a non-negative safe integer, got ${release}`);
  }
}
