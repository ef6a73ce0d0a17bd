import type { Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';

export type WalletStatus = 'active' | 'frozen' | 'withdrawn';

export interface WalletView {
  id: string;
  memberId: string;
  ledgerAccountId: string;
  prepaidIdId: string;
  prepaidIdLastDigits: string;
  prepaidIdStatus: string;
  status: WalletStatus;
  prepaidIdRotatedAt: Date | null;
  balancePosted: number;
  balanceHeld: number;
  createdAt: Date;
}

const VIEW_SQL = `SELECT w.id, w.member_id, w.ledger_account_id, w.prepaid_id_id, w.status, w.created_at,
       w.prepaid_id_rotated_at,
       p.last_digits, p.status AS prepaid_status, a.balance_posted, a.balance_held
  FROM wallet w
  JOIN prepaid_id p ON p.id = w.prepaid_id_id
  JOIN ledger_account a ON a.id = w.ledger_account_id`;

interface ViewRow {
  id: string;
  member_id: string;
  ledger_account_id: string;
  prepaid_id_id: string;
  status: WalletStatus;
  created_at: string;
  prepaid_id_rotated_at: string | null;
  last_digits: string;
  prepaid_status: string;
  balance_posted: string;
  balance_held: string;
}

function readView(row: ViewRow): WalletView {
  return {
    id: row.id,
    memberId: row.member_id,
    ledgerAccountId: row.ledger_account_id,
    prepaidIdId: row.prepaid_id_id,
    prepaidIdLastDigits: row.last_digits,
    prepaidIdStatus: row.prepaid_status,
    status: row.status,
    prepaidIdRotatedAt: row.prepaid_id_rotated_at ? new Date(row.prepaid_id_rotated_at) : null,
    balancePosted: Number(row.balance_posted),
    balanceHeld: Number(row.balance_held),
    createdAt: new Date(row.created_at),
  };
}

/**
 * Members' wallets. Each wallet is a ledger account with one dedicated
 * prepaid ID, which stays `pending` (and so cannot pay or receive) until the
 * member verifies the e-mail address.
 */
export class WalletService {
  constructor(
    private readonly ledger: LedgerService,
    private readonly prepaidIds: PrepaidIdService,
  ) {}

  /** Creates the wallet of a new member inside the registration's database transaction. */
  async createForMember(sql: Sql, memberId: string): Promise<string> {
    const accountId = await this.ledger.openAccount(sql, 'wallet');
    const prepaidId = await this.prepaidIds.create(sql, 'wallet', accountId, { status: 'pending' });
    const row = await sql.one<{ id: string }>(
      'INSERT INTO wallet (member_id, ledger_account_id, prepaid_id_id) VALUES (?, ?, ?) RETURNING id',
      [memberId, accountId, prepaidId.id],
    );
    return row!.id;
  }

  /** Lets the wallet's prepaid ID pay and receive, once the member's address is verified. */
  async activate(sql: Sql, memberId: string): Promise<void> {
    await sql.query(
      `UPDATE prepaid_id SET status = 'active', status_changed_at = now()
        WHERE status = 'pending'
          AND id = (SELECT prepaid_id_id FROM wallet WHERE member_id = ? AND status = 'active')`,
      [memberId],
    );
  }

  async findByMember(sql: Sql, memberId: string): Promise<WalletView | undefined> {
    const row = await sql.one<ViewRow>(`${VIEW_SQL} WHERE w.member_id = ?`, [memberId]);
    return row && readView(row);
  }

  /** Returns the full digits of the wallet's prepaid ID, for its owner only. */
  async revealPrepaidId(sql: Sql, memberId: string): Promise<string> {
    const wallet = await this.findByMember(sql, memberId);
    if (!wallet) throw new Error(`member ${memberId} has no wallet`);
    return this.prepaidIds.reveal(sql, wallet.prepaidIdId);
  }
}
