import { toPoints } from '../database/points.type';
import type { TransactionRecord } from './ledger.types';

/** Columns selected wherever a ledger transaction is read as a TransactionRow. */
export const TRANSACTION_COLUMNS = [
  'id',
  'kind',
  'status',
  'debit_account_id',
  'credit_account_id',
  'amount',
  'debit_balance_after',
  'credit_balance_after',
  'merchant_id',
  'prepaid_id_id',
  'parent_id',
  'expires_at',
  'actor_member_id',
  'order_reference',
  'description',
  'metadata',
  'created_at',
].join(', ');

/**
 * A ledger transaction row, either from the database (bigint and timestamps
 * as strings, as MikroORM configures the pg driver) or from the outbox's JSON
 * copy (numbers and ISO strings).
 */
export interface TransactionRow {
  id: string;
  kind: TransactionRecord['kind'];
  status: TransactionRecord['status'];
  debit_account_id: string | number;
  credit_account_id: string | number;
  amount: string | number;
  debit_balance_after: string | number;
  credit_balance_after: string | number;
  merchant_id: string | null;
  prepaid_id_id: string | null;
  parent_id: string | null;
  expires_at: string | null;
  actor_member_id: string | null;
  order_reference: string | null;
  description: string | null;
  metadata: Record<string, unknown> | null;
  created_at: Date | string;
}

export function readTransaction(row: TransactionRow): TransactionRecord {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    debitAccountId: String(row.debit_account_id),
    creditAccountId: String(row.credit_account_id),
    amount: toPoints(row.amount),
    debitBalanceAfter: toPoints(row.debit_balance_after),
    creditBalanceAfter: toPoints(row.credit_balance_after),
    merchantId: row.merchant_id,
    prepaidIdId: row.prepaid_id_id,
    parentId: row.parent_id,
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    actorMemberId: row.actor_member_id,
    orderReference: row.order_reference,
    description: row.description,
    metadata: row.metadata,
    createdAt: new Date(row.created_at),
  };
}
