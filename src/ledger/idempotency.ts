import type { Sql } from '../database/sql';
import type { TransactionRecord } from './ledger.types';
import { readTransaction, TRANSACTION_COLUMNS, type TransactionRow } from './transaction-row';

/** Finds the transaction that an idempotency key produced, with the fingerprint of its request. */
export async function findByIdempotencyKey(
  sql: Sql,
  scope: string,
  key: string,
): Promise<{ transaction: TransactionRecord; fingerprint: Buffer } | undefined> {
  const row = await sql.one<TransactionRow & { request_fingerprint: Buffer }>(
    `SELECT ${TRANSACTION_COLUMNS}, request_fingerprint FROM ledger_transaction
      WHERE idempotency_scope = ? AND idempotency_key = ?`,
    [scope, key],
  );
  if (!row) return undefined;
  return { transaction: readTransaction(row), fingerprint: row.request_fingerprint };
}
