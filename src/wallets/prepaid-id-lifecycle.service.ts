import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import type { Clock } from '../config/clock';
import { sqlFor, type Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import { findMemberById } from '../members/member.queries';
import type { TwoFactorService } from '../members/two-factor.service';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';

/** Minimum time between two rotations of a wallet's prepaid ID, rolling, in milliseconds. */
export const ROTATION_INTERVAL_MS = 24 * 60 * 60 * 1000;

export type RotationOutcome =
  | { ok: true; prepaidId: string; rotatedAt: Date; rotatableAt: Date }
  | { ok: false; code: 'ROTATION_TOO_SOON'; rotatableAt: Date }
  | {
      ok: false;
      code: 'TWO_FACTOR_CODE_REQUIRED' | 'INVALID_TWO_FACTOR_CODE' | 'WALLET_UNAVAILABLE';
    };

export interface OneTimeIdView {
  id: string;
  lastDigits: string;
  status: 'active' | 'spent' | 'cancelled' | 'expired' | 'retired' | 'blocked';
  amountCap: number | null;
  expiresAt: Date;
  createdAt: Date;
}

export type OneTimeCreation =
  | { ok: true; id: string; prepaidId: string; expiresAt: Date; amountCap: number | null }
  | { ok: false; code: 'WALLET_UNAVAILABLE' };

export interface LifecycleDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  twoFactor: TwoFactorService;
  audit: AuditService;
  clock: Clock;
  oneTimeDefaultMinutes: number;
  oneTimeMaxMinutes: number;
}

interface WalletRow {
  id: string;
  ledger_account_id: string;
  prepaid_id_id: string;
  status: string;
  prepaid_id_rotated_at: string | null;
}

/**
 * The lifecycle of a wallet's prepaid IDs: rotation of the dedicated ID and
 * one-time IDs derived from the wallet. Times come from the server's clock
 * in milliseconds since the epoch and are stored as timestamptz, so neither
 * the server's nor the database session's time zone changes any result.
 */
export class PrepaidIdLifecycleService {
  constructor(private readonly deps: LifecycleDependencies) {}

  /** The earliest time of the next rotation; null when the wallet may rotate now. */
  rotatableAt(rotatedAt: Date | null): Date | null {
    if (!rotatedAt) return null;
    const next = rotatedAt.getTime() + ROTATION_INTERVAL_MS;
    return next > this.deps.clock.now() ? new Date(next) : null;
  }

  /**
   * Replaces the wallet's prepaid ID with a new random one at once. The old
   * ID and every one-time ID stop working in the same database transaction,
   * which holds the wallet's ledger lock from its start, so no charge on the
   * old ID can commit after the rotation.
   */
  async rotate(
    em: EntityManager,
    memberId: string,
    code: string | null,
    ip: string,
  ): Promise<RotationOutcome> {
    return em.fork().transactional(async (tx): Promise<RotationOutcome> => {
      const sql = sqlFor(tx);
      // The ledger lock comes before the wallet and member rows, as in a
      // withdrawal, so that the two never wait for each other in a cycle.
      const account = await sql.one<{ ledger_account_id: string }>(
        'SELECT ledger_account_id FROM wallet WHERE member_id = ?',
        [memberId],
      );
      if (!account) throw new Error(`member ${memberId} has no wallet`);
      await this.deps.ledger.lockAccounts(sql, [account.ledger_account_id]);
      const member = await findMemberById(sql, memberId);
      if (!member) throw new Error(`member ${memberId} not found`);
      const wallet = await this.lockWallet(sql, memberId);
      if (wallet.status === 'withdrawn') return { ok: false, code: 'WALLET_UNAVAILABLE' };
      if (member.twoFactorEnabled) {
        if (!code) return { ok: false, code: 'TWO_FACTOR_CODE_REQUIRED' };
        if (!(await this.deps.twoFactor.verifyCode(sql, member, code))) {
          return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' };
        }
      }
      const lastRotation = wallet.prepaid_id_rotated_at
        ? new Date(wallet.prepaid_id_rotated_at)
        : null;
      const blockedUntil = this.rotatableAt(lastRotation);
      if (blockedUntil) return { ok: false, code: 'ROTATION_TOO_SOON', rotatableAt: blockedUntil };

      const old = await this.deps.prepaidIds.findById(sql, wallet.prepaid_id_id);
      // An unverified wallet's new ID stays pending, and a blocked one stays blocked.
      const status = old?.status === 'pending' || old?.status === 'blocked' ? old.status : 'active';
      const created = await this.deps.prepaidIds.create(sql, 'wallet', wallet.ledger_account_id, {
        status,
      });
      await sql.query(
        `UPDATE prepaid_id SET status = CASE WHEN kind = 'one_time' THEN 'cancelled' ELSE 'retired' END,
                status_changed_at = now()
          WHERE ledger_account_id = ? AND id <> ? AND status IN ('pending', 'active', 'blocked')`,
        [wallet.ledger_account_id, created.id],
      );
      const rotatedAt = new Date(this.deps.clock.now());
      await sql.query(
        'UPDATE wallet SET prepaid_id_id = ?, prepaid_id_rotated_at = ?::timestamptz WHERE id = ?',
        [created.id, rotatedAt.toISOString(), wallet.id],
      );
      await this.deps.audit.record(sql, {
        action: 'prepaid_id_rotated',
        actorMemberId: memberId,
        ip,
        details: { lastDigits: created.digits.slice(-4) },
      });
      return {
        ok: true,
        prepaidId: created.digits,
        rotatedAt,
        rotatableAt: new Date(rotatedAt.getTime() + ROTATION_INTERVAL_MS),
      };
    });
  }

  /** Creates a one-time prepaid ID that pays from the wallet once, before it expires. */
  async createOneTime(
    em: EntityManager,
    memberId: string,
    options: { amountCap: number | null; expiresInMinutes: number | null },
    ip: string,
  ): Promise<OneTimeCreation> {
    const minutes = options.expiresInMinutes ?? this.deps.oneTimeDefaultMinutes;
    return em.fork().transactional(async (tx): Promise<OneTimeCreation> => {
      const sql = sqlFor(tx);
      const wallet = await this.lockWallet(sql, memberId);
      // Blocking the wallet's own ID stops that ID only; an unverified
      // wallet (its ID still pending) or a frozen one cannot make new IDs.
      const walletId = await this.deps.prepaidIds.findById(sql, wallet.prepaid_id_id);
      if (wallet.status !== 'active' || walletId?.status === 'pending') {
        return { ok: false, code: 'WALLET_UNAVAILABLE' };
      }
      const expiresAt = new Date(this.deps.clock.now() + minutes * 60_000);
      const created = await this.deps.prepaidIds.create(sql, 'one_time', wallet.ledger_account_id, {
        expiresAt,
        amountCap: options.amountCap,
      });
      await this.deps.audit.record(sql, {
        action: 'one_time_prepaid_id_created',
        actorMemberId: memberId,
        ip,
        details: { lastDigits: created.digits.slice(-4), amountCap: options.amountCap, expiresAt },
      });
      return {
        ok: true,
        id: created.id,
        prepaidId: created.digits,
        expiresAt,
        amountCap: options.amountCap,
      };
    });
  }

  /** Lists the wallet's one-time IDs, newest first; an active one past its expiry shows as expired. */
  async listOneTime(
    em: EntityManager,
    memberId: string,
    includeInactive: boolean,
  ): Promise<OneTimeIdView[]> {
    const rows = await sqlFor(em).query<{
      id: string;
      last_digits: string;
      status: OneTimeIdView['status'];
      amount_cap: string | null;
      expires_at: string;
      created_at: string;
    }>(
      `SELECT p.id, p.last_digits, p.status, p.amount_cap, p.expires_at, p.created_at
         FROM prepaid_id p JOIN wallet w ON w.ledger_account_id = p.ledger_account_id
        WHERE w.member_id = ? AND p.kind = 'one_time'
        ORDER BY p.created_at DESC, p.id LIMIT 100`,
      [memberId],
    );
    const now = this.deps.clock.now();
    const views = rows.map((row): OneTimeIdView => {
      const expiresAt = new Date(row.expires_at);
      const expired = row.status === 'active' && expiresAt.getTime() <= now;
      return {
        id: row.id,
        lastDigits: row.last_digits,
        status: expired ? 'expired' : row.status,
        amountCap: row.amount_cap === null ? null : Number(row.amount_cap),
        expiresAt,
        createdAt: new Date(row.created_at),
      };
    });
    return includeInactive ? views : views.filter((view) => view.status === 'active');
  }

  /** Cancels one of the member's active one-time IDs; false when there is no such ID. */
  async cancelOneTime(
    em: EntityManager,
    memberId: string,
    id: string,
    ip: string,
  ): Promise<boolean> {
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      // Only an active ID changes. A charge marks a one-time ID spent on the
      // same condition, so when both race for the row exactly one of them wins.
      const rows = await sql.query(
        `UPDATE prepaid_id p SET status = 'cancelled', status_changed_at = now()
           FROM wallet w
          WHERE p.id = ? AND p.kind = 'one_time' AND p.status = 'active'
            AND p.expires_at > ?::timestamptz
            AND w.ledger_account_id = p.ledger_account_id AND w.member_id = ?
          RETURNING p.id`,
        [id, new Date(this.deps.clock.now()).toISOString(), memberId],
      );
      if (rows.length === 0) return false;
      await this.deps.audit.record(sql, {
        action: 'one_time_prepaid_id_cancelled',
        actorMemberId: memberId,
        ip,
      });
      return true;
    });
  }

  private async lockWallet(sql: Sql, memberId: string): Promise<WalletRow> {
    const wallet = await sql.one<WalletRow>(
      `SELECT id, ledger_account_id, prepaid_id_id, status, prepaid_id_rotated_at
         FROM wallet WHERE member_id = ? FOR UPDATE`,
      [memberId],
    );
    if (!wallet) throw new Error(`member ${memberId} has no wallet`);
    return wallet;
  }
}
