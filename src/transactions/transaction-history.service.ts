import type { Sql } from '../database/sql';
import { exactTimeSql, type TimeKey } from '../graphql/relay';
import type { TransactionRecord } from '../ledger/ledger.types';
import {
  readTransaction,
  TRANSACTION_COLUMNS,
  type TransactionRow,
} from '../ledger/transaction-row';

export type HistoryRow = TransactionRecord & TimeKey;

type Row = TransactionRow & { sort_time: string };

const COLUMNS = `${TRANSACTION_COLUMNS}, ${exactTimeSql('created_at')} AS sort_time`;

function readRow(row: Row): HistoryRow {
  return { ...readTransaction(row), sortTime: row.sort_time };
}

/**
 * Keyset pages of ledger transactions, newest first. Each query walks an index
 * on (account or merchant, created_at DESC, id DESC) from the cursor, so a
 * deep page costs the same as the first.
 */
export class TransactionHistoryService {
  /** Up to `limit` transactions of a merchant after the cursor. */
  async forMerchant(
    sql: Sql,
    merchantId: string,
    limit: number,
    after?: TimeKey,
  ): Promise<HistoryRow[]> {
    const rows = await sql.query<Row>(
      `SELECT ${COLUMNS} FROM ledger_transaction
        WHERE merchant_id = ? ${after ? 'AND (created_at, id) < (?::timestamptz, ?::uuid)' : ''}
        ORDER BY created_at DESC, id DESC LIMIT ?`,
      after ? [merchantId, after.sortTime, after.id, limit] : [merchantId, limit],
    );
    return rows.map(readRow);
  }

  /**
   * Up to `limit` transactions that debit or credit an account. The two sides
   * are read by their own indexes and merged, which Postgres does with two
   * short index scans instead of one scan over every row of the account.
   */
  async forAccount(
    sql: Sql,
    accountId: string,
    limit: number,
    after?: TimeKey,
  ): Promise<HistoryRow[]> {
    const position = after ? 'AND (created_at, id) < (?::timestamptz, ?::uuid)' : '';
    const side = (column: string) =>
      `(SELECT ${COLUMNS} FROM ledger_transaction WHERE ${column} = ? ${position}
         ORDER BY created_at DESC, id DESC LIMIT ?)`;
    const params = after ? [accountId, after.sortTime, after.id, limit] : [accountId, limit];
    const rows = await sql.query<Row>(
      `SELECT * FROM (${side('debit_account_id')} UNION ALL ${side('credit_account_id')}) AS both_sides
        ORDER BY created_at DESC, id DESC LIMIT ?`,
      [...params, ...params, limit],
    );
    return rows.map(readRow);
  }
}
