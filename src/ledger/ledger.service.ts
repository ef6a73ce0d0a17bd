import type { EntityManager } from '@mikro-orm/postgresql';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  isRetryableDatabaseError,
  pgErrorFields,
  PG_UNIQUE_VIOLATION,
} from '../database/pg-errors';
import { sqlFor, type Sql } from '../database/sql';
import type { Logger } from '../logging/logger';
import { insertPostingEvent } from '../events/outbox';
import { STORED_VALUE_KINDS, type LedgerAccountKind } from './ledger-account.entity';
import type { TransactionStatus } from './ledger-transaction.entity';
import { findByIdempotencyKey } from './idempotency';
import { readTransaction, TRANSACTION_COLUMNS, type TransactionRow } from './transaction-row';
import type {
  LockedAccount,
  PostingFailure,
  PostingRequest,
  PostingResult,
  TransactionRecord,
} from './ledger.types';

// Advisory lock keys are (namespace, account id). The namespace keeps these
// locks apart from any other advisory lock taken on the same database.
const ACCOUNT_LOCK_NAMESPACE = 7_340_001;
const MAX_LOCKABLE_ACCOUNT_ID = 2 ** 31 - 1;
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
}

/**
 * The only code that changes ledger balances.
 *
 * Each posting runs in one database transaction. It takes advisory locks on
 * both accounts in ascending id order, so two postings never deadlock. Then it
 * reads the accounts, checks the rules, and in a single statement updates both
 * balances and inserts the ledger transaction and its outbox event.
 *
 * The locks are advisory rather than row locks because a row lock would
 * assign the transaction id (xid) before the wait, while an advisory lock
 * does not. Taking every lock before the first write means that of two
 * postings on a shared account, the one that commits first also has the
 * lower xid, which is the order in which the outbox delivers events.
 */
export class LedgerService {
  private readonly maxRetries: number;

  constructor(private readonly options: LedgerServiceOptions) {
    this.maxRetries = options.maxRetries ?? 3;
  }

  /** Posts one transaction in a database transaction of its own, retrying transient failures. */
  async post(em: EntityManager, request: PostingRequest): Promise<PostingResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await em.fork().transactional((tx) => this.postWithin(sqlFor(tx), request));
        this.options.onCommitted?.();
        return result;
      } catch (error) {
        if (error instanceof PostingAborted) return { ok: false, ...error.failure };
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
        throw error;
      }
    }
  }

  /**
   * Posts one transaction inside a database transaction that the caller owns,
   * for callers that must write other rows atomically with the money.
   * Throws PostingAborted on an expected failure, so the caller's transaction rolls back.
   */
  async postWithin(sql: Sql, request: PostingRequest): Promise<PostingResult> {
    validateRequest(request);
    const accountIds = [request.debitAccountId, request.creditAccountId];
    await this.lockAccounts(sql, accountIds);

    if (request.idempotency) {
      const existing = await findByIdempotencyKey(
        sql,
        request.idempotency.scope,
        request.idempotency.key,
      );
      if (existing) {
        if (!existing.fingerprint.equals(request.idempotency.fingerprint)) {
          throw new PostingAborted({ code: 'IDEMPOTENCY_KEY_REUSED' });
        }
        return { ok: true, transaction: existing.transaction, replayed: true };
      }
    }

    const accounts = await readAccounts(sql, request.debitAccountId, request.creditAccountId);
    const status = statusOf(request);
    // The guard runs first: a prepaid ID retired or blocked meanwhile must be
    // reported as such, not as a lack of funds.
    if (request.guard) {
      const failure = await request.guard(sql, accounts);
      if (failure) throw new PostingAborted(failure);
    }

    // Releasing a hold (void, expiry) needs no funds; moving or holding points does.
    const spends = status === 'posted' || status === 'pending';
    if (spends && STORED_VALUE_KINDS.includes(accounts.debit.kind)) {
      const available =
        accounts.debit.balancePosted - accounts.debit.balanceHeld + (request.releaseHeld ?? 0);
      if (available < request.amount) {
        throw new PostingAborted({ code: 'INSUFFICIENT_BALANCE', available });
      }
    }
    const transaction = await writePosting(sql, request, status);
    return { ok: true, transaction, replayed: false };
  }

  /** Opens a ledger account with zero balances and returns its id. */
  async openAccount(sql: Sql, kind: LedgerAccountKind, merchantId?: string): Promise<string> {
    const row = await sql.one<{ id: string }>(
      'INSERT INTO ledger_account (kind, merchant_id) VALUES (?, ?) RETURNING id',
      [kind, merchantId ?? null],
    );
    return row!.id;
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
   * Takes the advisory locks of the given accounts in ascending id order, for
   * callers that must hold an account still across several statements (a
   * withdrawal reads the balance it forfeits). Locks are released at the end
   * of the database transaction; taking one twice is harmless.
   */
  async lockAccounts(sql: Sql, accountIds: string[]): Promise<void> {
    const ordered = [...new Set(accountIds)].sort((a, b) => Number(a) - Number(b));
    for (const id of ordered) {
      if (Number(id) > MAX_LOCKABLE_ACCOUNT_ID) {
        // NOTE: the two-key advisory lock takes a 32-bit id; wider ids need a new key scheme.
        throw new Error(`ledger account id ${id} does not fit the advisory lock key`);
      }
    }
    // Postgres evaluates the select list from left to right, so the locks are
    // taken in ascending id order within this one statement.
    const calls = ordered.map(() => 'pg_advisory_xact_lock(?, ?::integer)').join(', ');
    await sql.query(
      `SELECT ${calls}`,
      ordered.flatMap((id) => [ACCOUNT_LOCK_NAMESPACE, id]),
    );
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

async function readAccounts(
  sql: Sql,
  debitId: string,
  creditId: string,
): Promise<{ debit: LockedAccount; credit: LockedAccount }> {
  const rows = await sql.query<{
    id: string;
    kind: LedgerAccountKind;
    merchant_id: string | null;
    balance_posted: string;
    balance_held: string;
  }>(
    'SELECT id, kind, merchant_id, balance_posted, balance_held FROM ledger_account WHERE id IN (?, ?)',
    [debitId, creditId],
  );
  const byId = new Map(
    rows.map((row) => [
      row.id,
      {
        id: row.id,
        kind: row.kind,
        merchantId: row.merchant_id,
        balancePosted: Number(row.balance_posted),
        balanceHeld: Number(row.balance_held),
      },
    ]),
  );
  const debit = byId.get(debitId);
  const credit = byId.get(creditId);
  if (!debit || !credit) {
    throw new Error(`ledger account ${debit ? creditId : debitId} does not exist`);
  }
  return { debit, credit };
}

/**
 * Moves the balances, inserts the ledger transaction and inserts its outbox
 * event in one statement. Data-modifying CTEs all run exactly once, and the
 * balances after come from the updated rows themselves.
 */
async function writePosting(
  sql: Sql,
  request: PostingRequest,
  status: TransactionStatus,
): Promise<TransactionRecord> {
  const posted = status === 'posted' ? request.amount : 0;
  const heldChange =
    status === 'pending'
      ? request.amount
      : status === 'posted'
        ? -(request.releaseHeld ?? 0)
        : -request.amount;

  const row = await sql.one<TransactionRow>(
    `WITH debit AS (
        UPDATE ledger_account
           SET balance_posted = balance_posted - ?::bigint, balance_held = balance_held + ?::bigint
         WHERE id = ? RETURNING balance_posted, balance_held, kind, merchant_id
      ), credit AS (
        UPDATE ledger_account SET balance_posted = balance_posted + ?::bigint
         WHERE id = ? RETURNING balance_posted, balance_held, kind, merchant_id
      ), inserted AS (
        INSERT INTO ledger_transaction (
          kind, status, debit_account_id, credit_account_id, amount,
          debit_balance_after, credit_balance_after, merchant_id, prepaid_id_id, parent_id,
          expires_at, actor_member_id, idempotency_scope, idempotency_key, request_fingerprint,
          order_reference, description, metadata)
        SELECT ?, ?, ?, ?, ?::bigint, debit.balance_posted, credit.balance_posted, ?, ?, ?,
               ?::timestamptz, ?, ?, ?, ?, ?, ?, ?::jsonb
          FROM debit, credit
        RETURNING ${TRANSACTION_COLUMNS}
      ), event AS (${insertPostingEvent('inserted', 'debit', 'credit')})
      SELECT * FROM inserted`,
    [
      posted,
      heldChange,
      request.debitAccountId,
      posted,
      request.creditAccountId,
      request.kind,
      status,
      request.debitAccountId,
      request.creditAccountId,
      request.amount,
      request.merchantId ?? null,
      request.prepaidIdId ?? null,
      request.parentId ?? null,
      request.expiresAt?.toISOString() ?? null,
      request.actorMemberId ?? null,
      request.idempotency?.scope ?? null,
      request.idempotency?.key ?? null,
      request.idempotency?.fingerprint ?? null,
      request.orderReference ?? null,
      request.description ?? null,
      request.metadata ? JSON.stringify(request.metadata) : null,
    ],
  );
  if (!row) throw new Error('ledger posting wrote no transaction');
  return readTransaction(row);
}
