import { arrayLiteral, type Sql } from '../database/sql';
import { STORED_VALUE_KINDS, type LedgerAccountKind } from './ledger-account.entity';

// Advisory lock keys are (namespace, account id). The namespace keeps these
// locks apart from any other advisory lock taken on the same database.
const ACCOUNT_LOCK_NAMESPACE = 7_340_001;
const MAX_LOCKABLE_ACCOUNT_ID = 2 ** 31 - 1;
// An account's kind never changes, so remembered kinds never go stale; the
// bound only caps memory, at some tens of bytes per account.
const MAX_REMEMBERED_KINDS = 200_000;

/** Returns whether an account of this kind is shared by many postings: a merchant's settlement account or an operator account. */
export function isSharedKind(kind: LedgerAccountKind): boolean {
  return !STORED_VALUE_KINDS.includes(kind);
}

/**
 * Advisory locks on ledger accounts, taken in one global order: stored-value
 * accounts (wallets, cards) by id, then shared accounts by id. Every ledger
 * lock is taken through this class, so no two transactions wait for each
 * other's locks in a cycle. The one exception, card issuance, locks new cards
 * after the issuance account, and no other transaction knows those cards yet.
 * Shared accounts come last so that a posting can lock a busy merchant
 * account in its final statement, which keeps that lock for as short a time
 * as possible.
 */
export class AccountLocks {
  private readonly kinds = new Map<string, LedgerAccountKind>();

  /** Remembers the kind of an account, as when it is opened. */
  remember(id: string, kind: LedgerAccountKind): void {
    if (this.kinds.size >= MAX_REMEMBERED_KINDS) {
      // Maps iterate in insertion order, so this drops the oldest entry.
      this.kinds.delete(this.kinds.keys().next().value!);
    }
    this.kinds.set(id, kind);
  }

  /** Returns the kinds of the given accounts, reading those not remembered yet. */
  async kindsOf(sql: Sql, ids: string[]): Promise<Map<string, LedgerAccountKind>> {
    const missing = ids.filter((id) => !this.kinds.has(id));
    if (missing.length > 0) {
      const rows = await sql.query<{ id: string; kind: LedgerAccountKind }>(
        'SELECT id, kind FROM ledger_account WHERE id = ANY(?::bigint[])',
        [arrayLiteral(missing)],
      );
      for (const row of rows) this.remember(String(row.id), row.kind);
    }
    const result = new Map<string, LedgerAccountKind>();
    for (const id of ids) {
      const kind = this.kinds.get(id);
      if (!kind) throw new Error(`ledger account ${id} does not exist`);
      result.set(id, kind);
    }
    return result;
  }

  /**
   * Takes the locks of the given accounts in the global order, in one
   * statement. Locks are released at the end of the database transaction;
   * taking one twice is harmless.
   */
  async lock(sql: Sql, ids: string[]): Promise<void> {
    await this.kindsOf(sql, ids);
    const { text, params } = this.lockStatement(ids);
    await sql.query(text, params);
  }

  /** Returns the statement that lock() runs, for sending with others; the kinds must be known. */
  lockStatement(ids: string[]): { text: string; params: unknown[] } {
    const shared = (id: string) => {
      const kind = this.kinds.get(id);
      if (!kind) throw new Error(`the kind of ledger account ${id} is not known yet`);
      return Number(isSharedKind(kind));
    };
    const ordered = [...new Set(ids)].sort(
      (a, b) => shared(a) - shared(b) || Number(a) - Number(b),
    );
    // Postgres evaluates the select list from left to right, so the locks are
    // taken in this order within the one statement.
    return {
      text: `SELECT ${ordered.map(() => 'pg_advisory_xact_lock(?, ?::integer)').join(', ')}`,
      params: ordered.flatMap((id) => lockKey(id)),
    };
  }
}

/** Returns the two-part advisory lock key of an account. */
export function lockKey(id: string): [number, string] {
  if (Number(id) > MAX_LOCKABLE_ACCOUNT_ID) {
    // NOTE: the two-key advisory lock takes a 32-bit id; wider ids need a new key scheme.
    throw new Error(`ledger account id ${id} does not fit the advisory lock key`);
  }
  return [ACCOUNT_LOCK_NAMESPACE, id];
}
