import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlFor } from '../database/sql';

export interface UnusedBalance {
  asOf: Date;
  walletTotal: number;
  cardTotal: number;
  total: number;
  /** Wallet and card accounts with a balance above zero at `asOf`. */
  accountCount: number;
}

/**
 * SQL of the report, with the moment as the one parameter `?` three times.
 *
 * Each wallet and card account's balance at the moment is the balance after
 * its latest transaction written at or before it, on the debit or the credit
 * side. Each side is one probe of the index on (account, created_at DESC,
 * id DESC) with LIMIT 1, so the cost grows with the number of accounts and
 * not with the number of transactions. The probes sit in a lateral join
 * because the aggregates below would run a scalar subquery once each.
 *
 * debit_balance_after and credit_balance_after hold the account's posted
 * balance after the row for every status: a pending, voided or expired row
 * moves no posted points, so it repeats the posted balance that it found.
 * Points held by an authorization are therefore still counted, which is
 * right because they have not been used yet.
 *
 * An account opened after the moment is skipped without a probe. Its
 * created_at is the start of the database transaction that opened it, which
 * is no later than any transaction posted to it.
 *
 * NOTE: rows are ordered by created_at, which is clock_timestamp() when the
 * row was written under the account's lock. A step back of the database
 * server's clock between two postings on one account would pick the wrong
 * row. A row written just before the moment but committed after it counts
 * as before.
 */
export const UNUSED_BALANCE_SQL = `
  SELECT COALESCE(SUM(latest.balance_after) FILTER (WHERE a.kind = 'wallet'), 0) AS wallet_total,
         COALESCE(SUM(latest.balance_after) FILTER (WHERE a.kind = 'card'), 0) AS card_total,
         count(*) FILTER (WHERE latest.balance_after > 0) AS account_count
    FROM ledger_account a
    LEFT JOIN LATERAL (
      SELECT candidates.balance_after FROM (
        (SELECT t.debit_balance_after AS balance_after, t.created_at, t.id
           FROM ledger_transaction t
          WHERE t.debit_account_id = a.id AND t.created_at <= ?::timestamptz
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT 1)
        UNION ALL
        (SELECT t.credit_balance_after, t.created_at, t.id
           FROM ledger_transaction t
          WHERE t.credit_account_id = a.id AND t.created_at <= ?::timestamptz
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT 1)
      ) AS candidates
      ORDER BY candidates.created_at DESC, candidates.id DESC
      LIMIT 1
    ) AS latest ON true
   WHERE a.kind IN ('wallet', 'card') AND a.created_at <= ?::timestamptz`;

/**
 * Computes the unused balance of wallets and prepaid cards at a past or
 * present moment from the ledger, for the reports that Japanese issuers of
 * prepaid payment instruments file for each base date (31 March and
 * 30 September).
 *
 * The moment is sent as UTC text and compared as timestamptz, so neither the
 * server's nor the database session's time zone changes the result.
 */
export class UnusedBalanceService {
  async reportAt(em: EntityManager, asOf: Date): Promise<UnusedBalance> {
    if (Number.isNaN(asOf.getTime())) throw new RangeError('asOf is not a valid date');
    const moment = asOf.toISOString();
    const row = await sqlFor(em).one<{
      wallet_total: string;
      card_total: string;
      account_count: string;
    }>(UNUSED_BALANCE_SQL, [moment, moment, moment]);
    const walletTotal = toPoints(row!.wallet_total, 'wallet total');
    const cardTotal = toPoints(row!.card_total, 'card total');
    return {
      asOf,
      walletTotal,
      cardTotal,
      total: toPoints(String(walletTotal + cardTotal), 'total'),
      accountCount: Number(row!.account_count),
    };
  }
}

function toPoints(text: string, quantity: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`the unused-balance ${quantity} ${text} is beyond the safe-integer range`);
  }
  return value;
}
