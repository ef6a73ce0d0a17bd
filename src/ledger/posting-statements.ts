import type { Sql } from '../database/sql';
import { insertPostingEvent } from '../events/outbox';
import { lockKey } from './account-locks';
import type { LedgerAccountKind } from './ledger-account.entity';
import type { TransactionStatus } from './ledger-transaction.entity';
import type { LockedAccount, PostingRequest, TransactionRecord } from './ledger.types';
import { readTransaction, TRANSACTION_COLUMNS, type TransactionRow } from './transaction-row';

/** Runs one statement with `?` parameters and returns its rows. */
export type StatementRunner = (text: string, params: unknown[]) => Promise<unknown[]>;

interface AccountRow {
  id: string;
  kind: LedgerAccountKind;
  merchant_id: string | null;
  balance_posted: string;
  balance_held: string;
  /** The transaction of the request's idempotency key, if one exists, as JSON. */
  earlier: (TransactionRow & { fingerprint_hex: string }) | null;
}

/**
 * Reads both accounts, and the transaction that the request's idempotency
 * key already produced, in one round trip, since every statement between
 * the lock and the commit lengthens the time an account is locked.
 */
export async function readAccounts(
  sql: Sql,
  request: PostingRequest,
): Promise<{
  accounts: { debit: LockedAccount; credit: LockedAccount };
  earlier?: { transaction: TransactionRecord; fingerprint: Buffer };
}> {
  const { debitAccountId: debitId, creditAccountId: creditId, idempotency } = request;
  const rows = await sql.query<AccountRow>(
    `WITH earlier AS (
        SELECT ${TRANSACTION_COLUMNS}, encode(request_fingerprint, 'hex') AS fingerprint_hex
          FROM ledger_transaction WHERE idempotency_scope = ? AND idempotency_key = ?
      )
      SELECT id, kind, merchant_id, balance_posted, balance_held,
             (SELECT row_to_json(earlier) FROM earlier) AS earlier
        FROM ledger_account WHERE id IN (?, ?)`,
    [idempotency?.scope ?? null, idempotency?.key ?? null, debitId, creditId],
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
  const earlierRow = rows[0]?.earlier;
  const earlier = earlierRow
    ? {
        transaction: readTransaction(earlierRow),
        fingerprint: Buffer.from(earlierRow.fingerprint_hex, 'hex'),
      }
    : undefined;
  return { accounts: { debit, credit }, earlier };
}

/**
 * Moves the balances, inserts the ledger transaction and inserts its outbox
 * event in one statement. Data-modifying CTEs all run exactly once, and the
 * balances after come from the updated rows themselves.
 *
 * `lockFirst` names an account whose advisory lock the statement takes
 * before it writes anything: both updates are gated on the lock, so
 * Postgres takes it before it changes the first row and assigns the
 * transaction id. The statement's snapshot predates the wait, but an update
 * applies to the newest version of its row, so the balances stay exact.
 */
export async function writePosting(
  execute: StatementRunner,
  request: PostingRequest,
  status: TransactionStatus,
  options: { lockFirst?: string } = {},
): Promise<TransactionRecord> {
  const posted = status === 'posted' ? request.amount : 0;
  const heldChange =
    status === 'pending'
      ? request.amount
      : status === 'posted'
        ? -(request.releaseHeld ?? 0)
        : -request.amount;

  const lock = options.lockFirst
    ? 'SELECT pg_advisory_xact_lock(?, ?::integer)'
    : // One row and no lock, so that the gate below passes.
      'SELECT';
  const [row] = (await execute(
    `WITH late_lock AS (${lock}), debit AS (
        UPDATE ledger_account
           SET balance_posted = balance_posted - ?::bigint, balance_held = balance_held + ?::bigint
         WHERE id = ? AND EXISTS (SELECT FROM late_lock)
        RETURNING balance_posted, balance_held, kind, merchant_id
      ), credit AS (
        UPDATE ledger_account SET balance_posted = balance_posted + ?::bigint
         WHERE id = ? AND EXISTS (SELECT FROM late_lock)
        RETURNING balance_posted, balance_held, kind, merchant_id
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
      ...(options.lockFirst ? lockKey(options.lockFirst) : []),
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
  )) as TransactionRow[];
  if (!row) throw new Error('ledger posting wrote no transaction');
  return readTransaction(row);
}
