import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlFor, type Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';

export interface MerchantSummary {
  id: string;
  name: string;
  creditLimit: number;
  settlementAccountId: string;
  createdAt: Date;
}

const SUMMARY_SQL = `SELECT m.id, m.name, m.credit_limit, m.created_at, a.id AS settlement_account_id
  FROM merchant m JOIN ledger_account a ON a.merchant_id = m.id`;

interface SummaryRow {
  id: string;
  name: string;
  credit_limit: string;
  created_at: string;
  settlement_account_id: string;
}

function readSummary(row: SummaryRow): MerchantSummary {
  return {
    id: row.id,
    name: row.name,
    creditLimit: Number(row.credit_limit),
    settlementAccountId: row.settlement_account_id,
    createdAt: new Date(row.created_at),
  };
}

/** Creates and reads merchants together with their settlement accounts. */
export class MerchantService {
  // A merchant keeps its settlement account for life, so the mapping never goes stale.
  private readonly settlementAccounts = new Map<string, string>();

  constructor(private readonly ledger: LedgerService) {}

  async create(em: EntityManager, name: string): Promise<MerchantSummary> {
    const trimmed = name.trim();
    if (trimmed.length < 1 || trimmed.length > 200) {
      throw new RangeError('merchant name must be 1 to 200 characters');
    }
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const merchant = await sql.one<{ id: string }>(
        'INSERT INTO merchant (name) VALUES (?) RETURNING id',
        [trimmed],
      );
      await this.ledger.openAccount(sql, 'merchant_settlement', merchant!.id);
      return (await this.find(sql, merchant!.id))!;
    });
  }

  async find(sql: Sql, merchantId: string): Promise<MerchantSummary | undefined> {
    const row = await sql.one<SummaryRow>(`${SUMMARY_SQL} WHERE m.id = ?`, [merchantId]);
    return row && readSummary(row);
  }

  /**
   * Returns the id of a merchant's settlement account, read once per
   * process, because every charge, capture and credit needs it.
   */
  async settlementAccountId(sql: Sql, merchantId: string): Promise<string> {
    const known = this.settlementAccounts.get(merchantId);
    if (known) return known;
    const row = await sql.one<{ id: string }>(
      "SELECT id FROM ledger_account WHERE merchant_id = ? AND kind = 'merchant_settlement'",
      [merchantId],
    );
    if (!row) throw new Error(`merchant ${merchantId} has no settlement account`);
    this.settlementAccounts.set(merchantId, row.id);
    return row.id;
  }

  async list(sql: Sql): Promise<MerchantSummary[]> {
    const rows = await sql.query<SummaryRow>(`${SUMMARY_SQL} ORDER BY m.created_at, m.id`);
    return rows.map(readSummary);
  }
}
