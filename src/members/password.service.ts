import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor, type Sql } from '../database/sql';
import type { MailService } from '../mail/mail.service';
import {
  passwordChangedMail,
  passwordResetMail,
  usernameReminderMail,
} from '../mail/mail-templates';
import type { RateLimits } from '../rate-limit/rate-limits';
import {
  findMemberByEmail,
  findMemberById,
  normaliseLogin,
  type MemberRecord,
} from './member.queries';
import type { PasswordHasher } from './password-hasher';
import { checkPassword } from './password-policy';
import type { PasswordRejection } from './registration.service';
import type { SessionService } from './session.service';
import { hashToken, looksLikeToken, newToken, TOKEN_PREFIXES } from './tokens';
import type { TwoFactorService } from './two-factor.service';

const RESET_TTL_MINUTES = 60;

export type ChangePasswordOutcome =
  | { ok: true; endedSessionIds: string[] }
  | PasswordRejection
  | {
      ok: false;
      code: 'INVALID_CREDENTIALS' | 'INVALID_TWO_FACTOR_CODE' | 'TWO_FACTOR_CODE_REQUIRED';
    };

export type ResetPasswordOutcome =
  | { ok: true; endedSessionIds: string[] }
  | PasswordRejection
  | { ok: false; code: 'RESET_TOKEN_INVALID' };

export interface PasswordDependencies {
  hasher: PasswordHasher;
  sessions: SessionService;
  twoFactor: TwoFactorService;
  mail: MailService;
  audit: AuditService;
  limits: RateLimits;
  appUrl: string;
  mailQueued: () => void;
}

/** Password change and reset, and the username reminder. */
export class PasswordService {
  constructor(private readonly deps: PasswordDependencies) {}

  /**
   * Changes the password of a signed-in member and ends every other session.
   * With two-factor authentication on, a fresh code is needed as well.
   */
  async change(
    em: EntityManager,
    caller: { memberId: string; sessionId: string },
    input: { currentPassword: string; newPassword: string; twoFactorCode?: string | null },
    ip: string,
  ): Promise<ChangePasswordOutcome> {
    const member = await findMemberById(sqlFor(em), caller.memberId);
    if (!member) return { ok: false, code: 'INVALID_CREDENTIALS' };
    await this.deps.limits.consume('passwordPerAccount', member.id);
    if (!(await this.deps.hasher.verify(member.passwordHash, input.currentPassword))) {
      return { ok: false, code: 'INVALID_CREDENTIALS' };
    }
    const check = checkPassword(input.newPassword, {
      username: member.username,
      email: member.email,
    });
    if (!check.ok) return check;
    if (member.twoFactorEnabled && !input.twoFactorCode)
      return { ok: false, code: 'TWO_FACTOR_CODE_REQUIRED' };
    const passwordHash = await this.deps.hasher.hash(input.newPassword);

    const outcome = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      if (
        member.twoFactorEnabled &&
        !(await this.deps.twoFactor.verifyCode(sql, member, input.twoFactorCode!))
      ) {
        return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' } as const;
      }
      const endedSessionIds = await this.setPassword(sql, member, passwordHash, {
        action: 'password_changed',
        ip,
        keepSessionId: caller.sessionId,
      });
      return { ok: true, endedSessionIds } as const;
    });
    if (outcome.ok) {
      this.deps.sessions.onEnded(outcome.endedSessionIds);
      this.deps.mailQueued();
    }
    return outcome;
  }

  /**
   * Stores a new password hash and ends what the old password allowed: other
   * sessions (all of them unless `keepSessionId`), unused reset tokens and
   * pending sign-ins. Mails the member and writes the audit entry. Returns
   * the ids of the sessions ended.
   */
  private async setPassword(
    sql: Sql,
    member: MemberRecord,
    passwordHash: string,
    change: { action: 'password_changed' | 'password_reset'; ip: string; keepSessionId?: string },
  ): Promise<string[]> {
    await sql.query('UPDATE member SET password_hash = ? WHERE id = ?', [passwordHash, member.id]);
    await revokePendingCredentials(sql, member.id);
    const reason = change.action === 'password_changed' ? 'password changed' : 'password reset';
    const endedSessionIds = await this.deps.sessions.endAll(
      sql,
      member.id,
      reason,
      change.keepSessionId,
    );
    await this.deps.mail.enqueue(sql, passwordChangedMail(member.email));
    await this.deps.audit.record(sql, {
      action: change.action,
      actorMemberId: member.id,
      ip: change.ip,
      details: { endedSessions: endedSessionIds.length },
    });
    return endedSessionIds;
  }

  /** Mails a single-use reset link to a known address; unknown addresses get the same response. */
  async requestReset(em: EntityManager, email: string, ip: string): Promise<void> {
    await this.deps.limits.consume('mailPerAddress', `reset:${normaliseLogin(email)}`);
    await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberByEmail(sql, email);
      await this.deps.audit.record(sql, {
        action: 'password_reset_requested',
        subjectMemberId: member?.id ?? null,
        ip,
        details: { known: member !== undefined },
      });
      if (!member) return;
      const { token, hash } = newToken(TOKEN_PREFIXES.passwordReset);
      const row = await sql.one<{ expires_at: string }>(
        `INSERT INTO member_token (member_id, purpose, token_hash, expires_at)
         VALUES (?, 'password_reset', ?, now() + make_interval(mins => ?)) RETURNING expires_at`,
        [member.id, hash, RESET_TTL_MINUTES],
      );
      await this.deps.mail.enqueue(
        sql,
        passwordResetMail(member.email, token, this.deps.appUrl, new Date(row!.expires_at)),
      );
    });
    this.deps.mailQueued();
  }

  /** Sets a new password with a reset token and ends every session of the member. */
  async reset(
    em: EntityManager,
    token: string,
    newPassword: string,
    ip: string,
  ): Promise<ResetPasswordOutcome> {
    if (!looksLikeToken(token, TOKEN_PREFIXES.passwordReset))
      return { ok: false, code: 'RESET_TOKEN_INVALID' };
    const sql = sqlFor(em);
    const found = await sql.one<{ member_id: string }>(
      `SELECT member_id FROM member_token
        WHERE token_hash = ? AND purpose = 'password_reset' AND used_at IS NULL AND expires_at > now()`,
      [hashToken(token)],
    );
    const member = found && (await findMemberById(sql, found.member_id));
    if (!member) return { ok: false, code: 'RESET_TOKEN_INVALID' };
    const check = checkPassword(newPassword, { username: member.username, email: member.email });
    if (!check.ok) return check;
    const passwordHash = await this.deps.hasher.hash(newPassword);

    const outcome = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      // Spending the token in the same statement that checks it makes it single-use under concurrency.
      const spent = await sql.query(
        `UPDATE member_token SET used_at = now()
          WHERE token_hash = ? AND purpose = 'password_reset' AND used_at IS NULL AND expires_at > now()
          RETURNING id`,
        [hashToken(token)],
      );
      if (spent.length === 0) return { ok: false, code: 'RESET_TOKEN_INVALID' } as const;
      const endedSessionIds = await this.setPassword(sql, member, passwordHash, {
        action: 'password_reset',
        ip,
      });
      return { ok: true, endedSessionIds } as const;
    });
    if (outcome.ok) {
      this.deps.sessions.onEnded(outcome.endedSessionIds);
      this.deps.mailQueued();
    }
    return outcome;
  }

  /** Mails the username to a known address; unknown addresses get the same response. */
  async remindUsername(em: EntityManager, email: string, ip: string): Promise<void> {
    await this.deps.limits.consume('mailPerAddress', `reminder:${normaliseLogin(email)}`);
    await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberByEmail(sql, email);
      await this.deps.audit.record(sql, {
        action: 'username_reminder_requested',
        subjectMemberId: member?.id ?? null,
        ip,
        details: { known: member !== undefined },
      });
      if (member)
        await this.deps.mail.enqueue(sql, usernameReminderMail(member.email, member.username));
    });
    this.deps.mailQueued();
  }
}

/**
 * Ends what an old password started or could still start: unused reset
 * tokens and sign-ins waiting for their second factor.
 */
async function revokePendingCredentials(sql: Sql, memberId: string): Promise<void> {
  await sql.query(
    `UPDATE member_token SET used_at = now()
      WHERE member_id = ? AND purpose = 'password_reset' AND used_at IS NULL`,
    [memberId],
  );
  await sql.query(
    'UPDATE login_challenge SET completed_at = now() WHERE member_id = ? AND completed_at IS NULL',
    [memberId],
  );
}
