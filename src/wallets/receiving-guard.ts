import type { Sql } from '../database/sql';
import type { PostingGuard, PostingFailure } from '../ledger/ledger.types';

/**
 * A posting guard for points arriving in a wallet (top-ups and merchant
 * credits): the wallet must be active and its owner's address verified, and
 * the balance must stay within the configured maximum. It runs with the
 * wallet's account locked, so concurrent credits cannot pass the maximum
 * together. `next` adds the caller's own checks.
 */
export function receivingWalletGuard(
  amount: number,
  maximumBalance: number,
  next?: PostingGuard,
): PostingGuard {
  return async (sql, accounts) => {
    const { credit } = accounts;
    if (credit.kind === 'wallet') {
      if (!(await canReceive(sql, credit.id)))
        return { code: 'REJECTED', reason: 'WALLET_UNAVAILABLE' };
      if (credit.balancePosted + amount > maximumBalance) {
        const failure: PostingFailure = {
          code: 'WALLET_BALANCE_LIMIT_EXCEEDED',
          maximum: maximumBalance,
          balance: credit.balancePosted,
        };
        return failure;
      }
    }
    return next ? next(sql, accounts) : undefined;
  };
}

async function canReceive(sql: Sql, ledgerAccountId: string): Promise<boolean> {
  const row = await sql.one<{ usable: boolean }>(
    `SELECT w.status = 'active' AND m.status = 'active' AND m.email_verified_at IS NOT NULL AS usable
       FROM wallet w JOIN member m ON m.id = w.member_id
      WHERE w.ledger_account_id = ?`,
    [ledgerAccountId],
  );
  return row?.usable === true;
}
