import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { MailService } from '../mail/mail.service';
import { withdrawalMail } from '../mail/mail-templates';
import type { RateLimits } from '../rate-limit/rate-limits';
import type { WalletService } from '../wallets/wallet.service';
import { findMemberById } from './member.queries';
import type { PasswordHasher } from './password-hasher';
import type { SessionService } from './session.service';
import type { TwoFactorService } from './two-factor.service';

export interface WithdrawalRequest {
  password: string;
  twoFactorCode?: string | null;
  /** The balance the member agreed to forfeit, as shown by the preview. */
  confirmForfeitAmount: number;
}

export type WithdrawalOutcome =
  | { ok: true; forfeited: number; endedSessionIds: string[] }
  | {
      ok: false;
      code: 'INVALID_CREDENTIALS' | 'INVALID_TWO_FACTOR_CODE' | 'TWO_FACTOR_CODE_REQUIRED';
    }
  | { ok: false; code: 'FORFEIT_AMOUNT_MISMATCH'; amount: number }
  | { ok: false; code: 'PENDING_AUTHORIZATIONS'; held: number };

export interface WithdrawalDependencies {
  hasher: PasswordHasher;
  ledger: LedgerService;
  wallets: WalletService;
  sessions: SessionService;
  twoFactor: TwoFactorService;
  mail: MailService;
  audit: AuditService;
  limits: RateLimits;
  mailQueued: () => void;
}

/**
 * Closing an account. The remaining balance is forfeited to the operator's
 * forfeiture account (not refunded), the prepaid IDs stop working, sessions
 * end, and the personal data is erased while the ledger history stays.
 */
export class WithdrawalService {
  constructor(private readonly deps: WithdrawalDependencies) {}

  /** Returns the points that a withdrawal now would forfeit. */
  async preview(
    em: EntityManager,
    memberId: string,
  ): Promise<{ forfeitAmount: number; held: number }> {
    const wallet = await this.deps.wallets.findByMember(sqlFor(em), memberId);
    return { forfeitAmount: wallet?.balancePosted ?? 0, held: wallet?.balanceHeld ?? 0 };
  }

  async withdraw(
    em: EntityManager,
    memberId: string,
    request: WithdrawalRequest,
    ip: string,
  ): Promise<WithdrawalOutcome> {
    const member = await findMemberById(sqlFor(em), memberId);
    // A concurrent withdrawal may have closed the account since the session was checked.
    if (!member) return { ok: false, code: 'INVALID_CREDENTIALS' };
    await this.deps.limits.consume('passwordPerAccount', memberId);
    if (!(await this.deps.hasher.verify(member.passwordHash, request.password))) {
      return { ok: false, code: 'INVALID_CREDENTIALS' };
    }
    if (member.twoFactorEnabled && !request.twoFactorCode)
      return { ok: false, code: 'TWO_FACTOR_CODE_REQUIRED' };

    const outcome = await em.fork().transactional(async (tx): Promise<WithdrawalOutcome> => {
      const sql = sqlFor(tx);
      const before = await this.deps.wallets.findByMember(sql, member.id);
      if (!before) throw new Error(`member ${member.id} has no wallet`);
      const forfeitureAccountId = await this.deps.ledger.operatorAccountId(sql, 'forfeiture');
      // Both accounts of the forfeiture are locked before the first write or
      // row lock, because either assigns the transaction id. An id assigned
      // before the wait could deliver the forfeiture's event before that of a
      // posting that committed first. The wallet's lock also keeps charges
      // and credits out between reading the balance and forfeiting it.
      await this.deps.ledger.lockAccounts(sql, [before.ledgerAccountId, forfeitureAccountId]);
      // Locking the member row serialises concurrent withdrawals: the later
      // one finds the account closed.
      if (!(await findMemberById(sql, member.id, true)))
        return { ok: false, code: 'INVALID_CREDENTIALS' };
      if (
        member.twoFactorEnabled &&
        !(await this.deps.twoFactor.verifyCode(sql, member, request.twoFactorCode!))
      ) {
        return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' };
      }
      const wallet = (await this.deps.wallets.findByMember(sql, member.id))!;
      if (wallet.balanceHeld > 0)
        return { ok: false, code: 'PENDING_AUTHORIZATIONS', held: wallet.balanceHeld };
      if (wallet.balancePosted !== request.confirmForfeitAmount) {
        return { ok: false, code: 'FORFEIT_AMOUNT_MISMATCH', amount: wallet.balancePosted };
      }

      // Every prepaid ID on the wallet's account stops at once: the wallet's
      // own ID and any one-time IDs derived from it.
      await sql.query(
        `UPDATE prepaid_id SET status = 'retired', status_changed_at = now()
          WHERE ledger_account_id = ? AND status IN ('pending', 'active', 'blocked')`,
        [wallet.ledgerAccountId],
      );
      await sql.query(`UPDATE wallet SET status = 'withdrawn' WHERE id = ?`, [wallet.id]);
      if (wallet.balancePosted > 0) {
        await this.deps.ledger.postWithin(sql, {
          kind: 'forfeiture',
          debitAccountId: wallet.ledgerAccountId,
          creditAccountId: forfeitureAccountId,
          amount: wallet.balancePosted,
          description: 'balance forfeited at withdrawal',
        });
      }

      const endedSessionIds = await this.deps.sessions.endAll(sql, member.id, 'withdrawal');
      await this.deps.mail.enqueue(sql, withdrawalMail(member.email, wallet.balancePosted));
      // Recorded before the erasure, which clears this entry's address too.
      await this.deps.audit.record(sql, {
        action: 'withdrawal',
        actorMemberId: member.id,
        ip,
        details: { forfeited: wallet.balancePosted },
      });
      await this.erasePersonalData(sql, member.id, member.email);
      return { ok: true, forfeited: wallet.balancePosted, endedSessionIds };
    });

    if (outcome.ok) {
      this.deps.ledger.announceCommit();
      this.deps.sessions.onEnded(outcome.endedSessionIds);
      this.deps.mailQueued();
    }
    return outcome;
  }

  private async erasePersonalData(
    sql: ReturnType<typeof sqlFor>,
    memberId: string,
    email: string,
  ): Promise<void> {
    await sql.query(
      `UPDATE member SET email = NULL, username = NULL, password_hash = NULL, totp_secret = NULL,
              totp_pending_secret = NULL, totp_enabled_at = NULL, status = 'withdrawn', withdrawn_at = now()
        WHERE id = ?`,
      [memberId],
    );
    await sql.query('DELETE FROM recovery_code WHERE member_id = ?', [memberId]);
    await sql.query(
      'UPDATE member_token SET used_at = now() WHERE member_id = ? AND used_at IS NULL',
      [memberId],
    );
    await sql.query(`UPDATE member_session SET ip = '', user_agent = '' WHERE member_id = ?`, [
      memberId,
    ]);
    await sql.query(`UPDATE login_challenge SET ip = '', user_agent = '' WHERE member_id = ?`, [
      memberId,
    ]);
    // The entries stay for the audit, without the client addresses.
    await sql.query(
      `UPDATE audit_log SET ip = '' WHERE (subject_member_id = ? OR actor_member_id = ?) AND ip <> ''`,
      [memberId, memberId],
    );
    // Mails already handled are redacted. The farewell mail queued above still
    // needs the address until it is sent.
    // TODO: redact sent mails after a retention period, which would also cover the farewell mail.
    await sql.query(
      `UPDATE mail_outbox SET to_address = 'redacted', body_text = 'redacted'
        WHERE lower(to_address) = lower(?) AND status <> 'pending'`,
      [email],
    );
  }
}
