import type { Sql } from '../database/sql';
import type { PrepaidIdKind, PrepaidIdStatus } from './prepaid-id.entity';
import { generatePrepaidId, hasValidCheckDigit, normalisePrepaidId } from './prepaid-id';
import type { PrepaidIdVault } from './prepaid-id.vault';

/** A prepaid ID found by value or by id. */
export interface ResolvedPrepaidId {
  id: string;
  kind: PrepaidIdKind;
  status: PrepaidIdStatus;
  ledgerAccountId: string;
  lastDigits: string;
  lookupHash: Buffer;
  /** One-time IDs: when the ID stops working. */
  expiresAt: Date | null;
  /** One-time IDs: the largest amount it may pay, if capped. */
  amountCap: number | null;
  /** Wallet and one-time IDs: the status of the wallet they pay from; null for cards. */
  walletStatus: 'active' | 'frozen' | 'withdrawn' | null;
}

const RESOLVE_SQL = `SELECT p.id, p.kind, p.status, p.ledger_account_id, p.last_digits, p.lookup_hash,
       p.expires_at, p.amount_cap, w.status AS wallet_status
  FROM prepaid_id p LEFT JOIN wallet w ON w.ledger_account_id = p.ledger_account_id`;

interface ResolveRow {
  id: string;
  kind: PrepaidIdKind;
  status: PrepaidIdStatus;
  ledger_account_id: string;
  last_digits: string;
  lookup_hash: Buffer;
  expires_at: string | null;
  amount_cap: string | null;
  wallet_status: ResolvedPrepaidId['walletStatus'];
}

function readResolved(row: ResolveRow): ResolvedPrepaidId {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    ledgerAccountId: row.ledger_account_id,
    lastDigits: row.last_digits,
    lookupHash: row.lookup_hash,
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    amountCap: row.amount_cap === null ? null : Number(row.amount_cap),
    walletStatus: row.wallet_status,
  };
}

// A collision needs two equal 15-digit random payloads, so a second retry
// means something other than chance is wrong.
const MAX_GENERATION_ATTEMPTS = 3;

/** Creates prepaid IDs and finds them by the digits a caller presents. */
export class PrepaidIdService {
  constructor(private readonly vault: PrepaidIdVault) {}

  /** Creates a new random prepaid ID for a ledger account and returns its row id and digits. */
  async create(
    sql: Sql,
    kind: PrepaidIdKind,
    ledgerAccountId: string,
    options: { status?: PrepaidIdStatus; expiresAt?: Date; amountCap?: number | null } = {},
  ): Promise<{ id: string; digits: string }> {
    for (let attempt = 1; attempt <= MAX_GENERATION_ATTEMPTS; attempt++) {
      const digits = generatePrepaidId();
      const row = await sql.one<{ id: string }>(
        `INSERT INTO prepaid_id (kind, lookup_hash, encrypted_value, last_digits, ledger_account_id,
                                 status, expires_at, amount_cap)
         VALUES (?, ?, ?, ?, ?, ?, ?::timestamptz, ?)
         ON CONFLICT (lookup_hash) DO NOTHING
         RETURNING id`,
        [
          kind,
          this.vault.lookupHash(digits),
          this.vault.encrypt(digits),
          digits.slice(-4),
          ledgerAccountId,
          options.status ?? 'active',
          options.expiresAt?.toISOString() ?? null,
          options.amountCap ?? null,
        ],
      );
      if (row) return { id: row.id, digits };
    }
    throw new Error(`no unused prepaid ID after ${MAX_GENERATION_ATTEMPTS} random draws`);
  }

  /**
   * Finds a prepaid ID by the value a caller typed, in any status. Returns
   * undefined for a malformed value, a wrong check digit or an unknown ID,
   * without saying which, so callers cannot probe the ID space.
   */
  async resolve(sql: Sql, input: string): Promise<ResolvedPrepaidId | undefined> {
    const digits = normalisePrepaidId(input);
    if (!digits || !hasValidCheckDigit(digits)) return undefined;
    const row = await sql.one<ResolveRow>(`${RESOLVE_SQL} WHERE p.lookup_hash = ?`, [
      this.vault.lookupHash(digits),
    ]);
    return row && readResolved(row);
  }

  /** Finds a prepaid ID by its row id, as a guard re-reads it under the account lock. */
  async findById(sql: Sql, id: string): Promise<ResolvedPrepaidId | undefined> {
    const row = await sql.one<ResolveRow>(`${RESOLVE_SQL} WHERE p.id = ?`, [id]);
    return row && readResolved(row);
  }

  /** Returns the digits of a prepaid ID for its owner. */
  async reveal(sql: Sql, id: string): Promise<string> {
    const row = await sql.one<{ encrypted_value: Buffer }>(
      'SELECT encrypted_value FROM prepaid_id WHERE id = ?',
      [id],
    );
    if (!row) throw new Error(`prepaid ID ${id} does not exist`);
    return this.vault.decrypt(row.encrypted_value);
  }

  /**
   * Marks an active one-time ID spent and returns whether it was still
   * active. The UPDATE waits for a concurrent cancellation of the row and
   * then finds it cancelled, so of a charge and a cancellation one wins.
   */
  async markSpent(sql: Sql, id: string): Promise<boolean> {
    const rows = await sql.query(
      `UPDATE prepaid_id SET status = 'spent', status_changed_at = now()
        WHERE id = ? AND status = 'active' RETURNING id`,
      [id],
    );
    return rows.length === 1;
  }

  /** Changes a prepaid ID's status, as for blocking or retiring it. */
  async setStatus(sql: Sql, id: string, status: PrepaidIdStatus): Promise<void> {
    await sql.query('UPDATE prepaid_id SET status = ?, status_changed_at = now() WHERE id = ?', [
      status,
      id,
    ]);
  }
}
