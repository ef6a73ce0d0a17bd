import type { Sql } from '../database/sql';
import type { PrepaidIdKind, PrepaidIdStatus } from './prepaid-id.entity';
import { generatePrepaidId, hasValidCheckDigit, normalisePrepaidId } from './prepaid-id';
import type { PrepaidIdVault } from './prepaid-id.vault';

/** A prepaid ID found by value. */
export interface ResolvedPrepaidId {
  id: string;
  kind: PrepaidIdKind;
  status: PrepaidIdStatus;
  ledgerAccountId: string;
  lastDigits: string;
  lookupHash: Buffer;
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
    status: PrepaidIdStatus = 'active',
  ): Promise<{ id: string; digits: string }> {
    for (let attempt = 1; attempt <= MAX_GENERATION_ATTEMPTS; attempt++) {
      const digits = generatePrepaidId();
      const row = await sql.one<{ id: string }>(
        `INSERT INTO prepaid_id (kind, lookup_hash, encrypted_value, last_digits, ledger_account_id, status)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (lookup_hash) DO NOTHING
         RETURNING id`,
        [
          kind,
          this.vault.lookupHash(digits),
          this.vault.encrypt(digits),
          digits.slice(-4),
          ledgerAccountId,
          status,
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
    const lookupHash = this.vault.lookupHash(digits);
    const row = await sql.one<{
      id: string;
      kind: PrepaidIdKind;
      status: PrepaidIdStatus;
      ledger_account_id: string;
      last_digits: string;
    }>(
      'SELECT id, kind, status, ledger_account_id, last_digits FROM prepaid_id WHERE lookup_hash = ?',
      [lookupHash],
    );
    if (!row) return undefined;
    return {
      id: row.id,
      kind: row.kind,
      status: row.status,
      ledgerAccountId: row.ledger_account_id,
      lastDigits: row.last_digits,
      lookupHash,
    };
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

  /** Changes a prepaid ID's status, as for blocking, retiring or spending it. */
  async setStatus(sql: Sql, id: string, status: PrepaidIdStatus): Promise<void> {
    await sql.query('UPDATE prepaid_id SET status = ?, status_changed_at = now() WHERE id = ?', [
      status,
      id,
    ]);
  }
}
