import type { Clock } from '../config/clock';
import type { Sql } from '../database/sql';
import type { PostingGuard, TransactionRecord } from '../ledger/ledger.types';
import type { PrepaidIdService, ResolvedPrepaidId } from './prepaid-id.service';

/**
 * Whether a prepaid ID may pay `amount` at `now`: it is active, its wallet
 * (if any) is active, and a one-time ID has not expired and is within its
 * cap. Every failed condition gets the same answer from the API, so that a
 * caller learns nothing about why.
 */
export function canPay(prepaid: ResolvedPrepaidId, amount: number, now: number): boolean {
  if (prepaid.status !== 'active') return false;
  if (prepaid.walletStatus !== null && prepaid.walletStatus !== 'active') return false;
  if (prepaid.kind === 'one_time') {
    if (!prepaid.expiresAt || prepaid.expiresAt.getTime() <= now) return false;
    if (prepaid.amountCap !== null && amount > prepaid.amountCap) return false;
  }
  return true;
}

/**
 * A posting guard that checks canPay again with the account locked, because
 * a block, a withdrawal or another charge may have changed the ID since it
 * was looked up. A one-time ID is spent in the same database transaction, so
 * of concurrent charges on it exactly one succeeds. Cancelling a one-time ID
 * takes no account lock, so spending it is conditional on the ID being
 * still active, and a charge that loses to a cancellation is rejected.
 */
export function paymentGuard(
  prepaidIds: PrepaidIdService,
  prepaid: ResolvedPrepaidId,
  amount: number,
  clock: Clock,
): PostingGuard {
  return async (sql) => {
    const current = await prepaidIds.findById(sql, prepaid.id);
    if (!current || !canPay(current, amount, clock.now())) {
      return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
    }
    if (current.kind === 'one_time' && !(await prepaidIds.markSpent(sql, current.id))) {
      return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
    }
    return undefined;
  };
}

/**
 * Returns the payer's balance after a charge or capture as a merchant may
 * see it. A one-time ID is spent by its payment and stands for a wallet
 * whose balance its owner keeps private, so the merchant is shown 0 for it.
 */
export async function balanceShownToMerchant(
  sql: Sql,
  transaction: TransactionRecord,
): Promise<number> {
  if (!transaction.prepaidIdId) return transaction.debitBalanceAfter;
  const row = await sql.one<{ kind: string }>('SELECT kind FROM prepaid_id WHERE id = ?', [
    transaction.prepaidIdId,
  ]);
  return row?.kind === 'one_time' ? 0 : transaction.debitBalanceAfter;
}
