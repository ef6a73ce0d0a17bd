import { readTransaction, type TransactionRow } from '../ledger/transaction-row';
import type { TransactionRecord } from '../ledger/ledger.types';

export interface AccountBalance {
  accountId: string;
  kind: string;
  merchantId: string | null;
  posted: number;
  held: number;
}

/** An outbox row as delivered to subscribers. */
export interface LedgerEvent {
  id: string;
  xid: bigint;
  kind: string;
  merchantId: string | null;
  accountIds: string[];
  transaction: TransactionRecord;
  balances: AccountBalance[];
}

export interface LedgerEventRow {
  id: string;
  xid: string;
  kind: string;
  merchant_id: string | null;
  account_ids: string[];
  payload: { transaction: TransactionRow; balances: AccountBalance[] };
}

export function readLedgerEvent(row: LedgerEventRow): LedgerEvent {
  return {
    id: row.id,
    xid: BigInt(row.xid),
    kind: row.kind,
    merchantId: row.merchant_id,
    accountIds: row.account_ids.map(String),
    transaction: readTransaction(row.payload.transaction),
    balances: row.payload.balances.map((balance) => ({
      accountId: String(balance.accountId),
      kind: balance.kind,
      merchantId: balance.merchantId,
      posted: Number(balance.posted),
      held: Number(balance.held),
    })),
  };
}
