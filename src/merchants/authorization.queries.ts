// Reads of authorizations and their settlements from ledger_transaction, and
// the fields that a settlement takes from its authorization.
import type { Sql } from '../database/sql';
import type { TransactionRecord } from '../ledger/ledger.types';
import {
  readTransaction,
  TRANSACTION_COLUMNS,
  type TransactionRow,
} from '../ledger/transaction-row';

const SETTLEMENT_KINDS = ['capture', 'void', 'expiry'] as const;

/** Returns the fields that a settlement copies from its authorization, including its two accounts. */
export function settlementOf(authorization: TransactionRecord) {
  return {
    debitAccountId: authorization.debitAccountId,
    creditAccountId: authorization.creditAccountId,
    merchantId: authorization.merchantId,
    prepaidIdId: authorization.prepaidIdId,
    parentId: authorization.id,
    orderReference: authorization.orderReference,
  };
}

export function expiryOf(authorization: TransactionRecord): Date {
  // A CHECK constraint gives every pending posting an expires_at.
  if (!authorization.expiresAt) {
    throw new Error(`authorization ${authorization.id} has no expires_at`);
  }
  return authorization.expiresAt;
}

/** Finds the merchant's authorization by id. Another merchant's authorization is not found. */
export async function findAuthorization(
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
export async function findSettlement(
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

export async function heldAmountOf(sql: Sql, authorizationId: string): Promise<number> {
  const row = await sql.one<{ amount: string }>(
    'SELECT amount FROM ledger_transaction WHERE id = ?',
    [authorizationId],
  );
  if (!row) throw new Error(`authorization ${authorizationId} does not exist`);
  return Number(row.amount);
}

/**
 * Reports whether the ID that an authorization was made with has been
 * blocked, or its wallet frozen or closed, since. A retired ID (rotated away) does not
 * stop a capture: the hold is on the wallet, which still pays.
 */
export async function sourceIsStopped(
  sql: Sql,
  authorization: TransactionRecord,
): Promise<boolean> {
  if (!authorization.prepaidIdId) return false;
  const row = await sql.one<{ status: string; wallet_status: string | null }>(
    `SELECT p.status, w.status AS wallet_status
       FROM prepaid_id p LEFT JOIN wallet w ON w.ledger_account_id = p.ledger_account_id
      WHERE p.id = ?`,
    [authorization.prepaidIdId],
  );
  return row?.status === 'blocked' || (row?.wallet_status ?? 'active') !== 'active';
}
