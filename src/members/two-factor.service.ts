import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import type { Clock } from '../config/clock';
import { sqlFor, type Sql } from '../database/sql';
import type { RateLimits } from '../rate-limit/rate-limits';
import { findMemberById, type MemberRecord } from './member.queries';
import type { PasswordHasher } from './password-hasher';
import { generateRecoveryCodes, hashRecoveryCode, normaliseRecoveryCode } from './recovery-codes';
import type { SecretBox } from './secret-box';
import { createTotpSecret, totpQrCodeDataUrl, totpUri, verifyTotp } from './totp';

const ISSUER = 'Prepaid Wallet';
const RECOVERY_CODE_COUNT = 10;

export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
  qrCodeDataUrl: string;
}

/** Kind of code that was accepted, for the audit log. */
export type CodeKind = 'totp' | 'recovery';

export type TwoFactorFailure =
  | { ok: false; code: 'INVALID_CREDENTIALS' }
  | { ok: false; code: 'INVALID_TWO_FACTOR_CODE' }
  | { ok: false; code: 'TWO_FACTOR_ALREADY_ENABLED' }
  | { ok: false; code: 'TWO_FACTOR_NOT_ENABLED' }
  | { ok: false; code: 'TWO_FACTOR_ENROLMENT_MISSING' };

export interface TwoFactorDependencies {
  secrets: SecretBox;
  recoveryKey: Buffer;
  hasher: PasswordHasher;
  limits: RateLimits;
  audit: AuditService;
  clock: Clock;
}

/**
 * TOTP two-factor authentication (RFC 6238) with single-use recovery codes.
 * Every accepted TOTP code advances the member's last used time step in one
 * conditional UPDATE, so a code is accepted once only, also when two
 * requests race, and also across sign-in and sensitive actions.
 */
export class TwoFactorService {
  constructor(private readonly deps: TwoFactorDependencies) {}

  /** Starts enrolment: a new secret, kept apart until a first code confirms it. */
  async enroll(em: EntityManager, memberId: string): Promise<TotpEnrollment | TwoFactorFailure> {
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberById(sql, memberId, true);
      if (!member) throw new Error(`member ${memberId} not found`);
      if (member.twoFactorEnabled)
        return { ok: false, code: 'TWO_FACTOR_ALREADY_ENABLED' } as const;
      const secret = createTotpSecret();
      await sql.query('UPDATE member SET totp_pending_secret = ? WHERE id = ?', [
        this.deps.secrets.seal(secret),
        memberId,
      ]);
      const otpauthUri = totpUri(secret, member.username, ISSUER);
      return { secret, otpauthUri, qrCodeDataUrl: await totpQrCodeDataUrl(otpauthUri) };
    });
  }

  /** Turns two-factor authentication on with a first code; returns the recovery codes, shown once. */
  async confirm(
    em: EntityManager,
    memberId: string,
    code: string,
    ip: string,
  ): Promise<string[] | TwoFactorFailure> {
    await this.deps.limits.consume('codePerAccount', memberId);
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const row = await sql.one<{
        totp_pending_secret: Buffer | null;
        totp_enabled_at: string | null;
        totp_last_step: string;
      }>(
        `SELECT totp_pending_secret, totp_enabled_at, totp_last_step FROM member
          WHERE id = ? AND status = 'active' FOR UPDATE`,
        [memberId],
      );
      if (!row) throw new Error(`member ${memberId} not found`);
      if (row.totp_enabled_at) return { ok: false, code: 'TWO_FACTOR_ALREADY_ENABLED' } as const;
      if (!row.totp_pending_secret)
        return { ok: false, code: 'TWO_FACTOR_ENROLMENT_MISSING' } as const;
      const secret = this.deps.secrets.open(row.totp_pending_secret);
      const result = verifyTotp(secret, code, Number(row.totp_last_step), this.deps.clock.now());
      if (!result.valid) return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' } as const;

      await sql.query(
        `UPDATE member SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
                totp_enabled_at = now(), totp_last_step = ? WHERE id = ?`,
        [result.step, memberId],
      );
      const codes = await this.replaceRecoveryCodes(sql, memberId);
      await this.deps.audit.record(sql, {
        action: 'two_factor_enabled',
        actorMemberId: memberId,
        ip,
      });
      return codes;
    });
  }

  /** Turns two-factor authentication off; needs the password and a code. */
  async disable(
    em: EntityManager,
    memberId: string,
    password: string,
    code: string,
    ip: string,
  ): Promise<{ ok: true } | TwoFactorFailure> {
    const member = await findMemberById(sqlFor(em), memberId);
    if (!member) throw new Error(`member ${memberId} not found`);
    if (!member.twoFactorEnabled) return { ok: false, code: 'TWO_FACTOR_NOT_ENABLED' };
    await this.deps.limits.consume('passwordPerAccount', memberId);
    if (!(await this.deps.hasher.verify(member.passwordHash, password)))
      return { ok: false, code: 'INVALID_CREDENTIALS' };
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const accepted = await this.verifyCode(sql, member, code);
      if (!accepted) return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' } as const;
      await sql.query(
        `UPDATE member SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL WHERE id = ?`,
        [memberId],
      );
      await sql.query('DELETE FROM recovery_code WHERE member_id = ?', [memberId]);
      await this.deps.audit.record(sql, {
        action: 'two_factor_disabled',
        actorMemberId: memberId,
        ip,
        details: { with: accepted },
      });
      return { ok: true } as const;
    });
  }

  /**
   * Checks a TOTP or recovery code for a member with two-factor
   * authentication on, consuming it when it is valid. Counts against the
   * member's code rate limit before anything else.
   */
  async verifyCode(sql: Sql, member: MemberRecord, code: string): Promise<CodeKind | undefined> {
    await this.deps.limits.consume('codePerAccount', member.id);
    const trimmed = code.replace(/\s/g, '');
    if (/^\d{6}$/.test(trimmed)) {
      const row = await sql.one<{ totp_secret: Buffer | null; totp_last_step: string }>(
        'SELECT totp_secret, totp_last_step FROM member WHERE id = ?',
        [member.id],
      );
      if (!row?.totp_secret) return undefined;
      const secret = this.deps.secrets.open(row.totp_secret);
      const result = verifyTotp(secret, trimmed, Number(row.totp_last_step), this.deps.clock.now());
      if (!result.valid) return undefined;
      const advanced = await sql.query(
        'UPDATE member SET totp_last_step = ? WHERE id = ? AND totp_last_step < ? RETURNING id',
        [result.step, member.id, result.step],
      );
      if (advanced.length === 0) return undefined;
      // The limit is for guesses: a right code does not use up an attempt.
      await this.deps.limits.refund('codePerAccount', member.id);
      return 'totp';
    }
    const normalised = normaliseRecoveryCode(code);
    if (!normalised) return undefined;
    const used = await sql.query(
      `UPDATE recovery_code SET used_at = now()
        WHERE member_id = ? AND code_hash = ? AND used_at IS NULL RETURNING id`,
      [member.id, hashRecoveryCode(this.deps.recoveryKey, normalised)],
    );
    if (used.length === 0) return undefined;
    await this.deps.limits.refund('codePerAccount', member.id);
    return 'recovery';
  }

  /** Number of recovery codes not used yet. */
  async remainingRecoveryCodes(sql: Sql, memberId: string): Promise<number> {
    const row = await sql.one<{ count: string }>(
      'SELECT count(*) FROM recovery_code WHERE member_id = ? AND used_at IS NULL',
      [memberId],
    );
    return Number(row!.count);
  }

  private async replaceRecoveryCodes(sql: Sql, memberId: string): Promise<string[]> {
    await sql.query('DELETE FROM recovery_code WHERE member_id = ?', [memberId]);
    const codes = generateRecoveryCodes(RECOVERY_CODE_COUNT);
    for (const code of codes) {
      await sql.query('INSERT INTO recovery_code (member_id, code_hash) VALUES (?, ?)', [
        memberId,
        hashRecoveryCode(this.deps.recoveryKey, normaliseRecoveryCode(code)!),
      ]);
    }
    return codes;
  }
}
