import { IsolationLevel } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlFor } from '../database/sql';

export interface AccountMismatch {
  accountId: string;
  kind: string;
  balancePosted: number;
  expectedPosted: number;
  balanceHeld: number;
  expectedHeld: number;
}

export interface LedgerCheckReport {
  /** True when the balances sum to zero and every account matches its transactions. */
  balanced: boolean;
  /** Sum of every account's posted balance; zero in a balanced ledger. */
  totalPosted: number;
  accountCount: number;
  transactionCount: number;
  mismatches: AccountMismatch[];
  checkedAt: Date;
}

/**
 * Verifies the ledger's invariants from the transactions themselves. The
 * posted balances must sum to zero. Each account's posted balance must equal
 * its posted credits minus its posted debits. Each held balance must equal
 * the account's authorizations that no capture, void or expiry has settled.
 */
export class LedgerCheckService {
  async check(em: EntityManager): Promise<LedgerCheckReport> {
    // One snapshot for every query, so that postings committing meanwhile
    // cannot make a balanced ledger look unbalanced.
    return em.fork().transactional(
      async (tx) => {
        const sql = sqlFor(tx);
        const totals = await sql.one<{ total: string; accounts: string; transactions: string }>(
          `SELECT (SELECT COALESCE(SUM(balance_posted), 0) FROM ledger_account) AS total,
                  (SELECT count(*) FROM ledger_account) AS accounts,
                  (SELECT count(*) FROM ledger_transaction) AS transactions`,
        );
        const rows = await sql.query<{
          id: string;
          kind: string;
          balance_posted: string;
          balance_held: string;
          expected_posted: string;
          expected_held: string;
        }>(
          `WITH posted AS (
             SELECT account_id, SUM(change) AS total FROM (
               SELECT credit_account_id AS account_id, amount AS change
                 FROM ledger_transaction WHERE status = 'posted'
               UNION ALL
               SELECT debit_account_id, -amount FROM ledger_transaction WHERE status = 'posted'
             ) AS changes GROUP BY account_id
           ), held AS (
             SELECT p.debit_account_id AS account_id, SUM(p.amount) AS total
               FROM ledger_transaction p
              WHERE p.status = 'pending'
                AND NOT EXISTS (SELECT 1 FROM ledger_transaction s WHERE s.parent_id = p.id
                                   AND s.kind IN ('capture', 'void', 'expiry'))
              GROUP BY p.debit_account_id
           )
           SELECT a.id, a.kind, a.balance_posted, a.balance_held,
                  COALESCE(posted.total, 0) AS expected_posted, COALESCE(held.total, 0) AS expected_held
             FROM ledger_account a
             LEFT JOIN posted ON posted.account_id = a.id
             LEFT JOIN held ON held.account_id = a.id
            WHERE a.balance_posted <> COALESCE(posted.total, 0)
               OR a.balance_held <> COALESCE(held.total, 0)
            ORDER BY a.id`,
        );
        const mismatches = rows.map((row) => ({
          accountId: row.id,
          kind: row.kind,
          balancePosted: Number(row.balance_posted),
          expectedPosted: Number(row.expected_posted),
          balanceHeld: Number(row.balance_held),
          expectedHeld: Number(row.expected_held),
        }));
        const totalPosted = Number(totals!.total);
        return {
          balanced: totalPosted === 0 && mismatches.length === 0,
          totalPosted,
          accountCount: Number(totals!.accounts),
          transactionCount: Number(totals!.transactions),
          mismatches,
          checkedAt: new Date(),
        };
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
  }
}
