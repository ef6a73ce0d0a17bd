import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { pgErrorFields, PG_UNIQUE_VIOLATION } from '../database/pg-errors';
import { sqlFor, type Sql } from '../database/sql';
import type { MailService } from '../mail/mail.service';
import { alreadyRegisteredMail, usernameTakenMail, verificationMail } from '../mail/mail-templates';
import type { RateLimits } from '../rate-limit/rate-limits';
import type { WalletService } from '../wallets/wallet.service';
import { findMemberByEmail, normaliseLogin } from './member.queries';
import type { PasswordHasher } from './password-hasher';
import { checkPassword, type PasswordCheck } from './password-policy';
import { hashToken, looksLikeToken, newToken, TOKEN_PREFIXES } from './tokens';

const VERIFICATION_TTL_HOURS = 24;

export interface RegistrationRequest {
  email: string;
  username: string;
  password: string;
}

export type PasswordRejection = Extract<PasswordCheck, { ok: false }>;

export type RegistrationOutcome = { ok: true } | PasswordRejection;

export interface RegistrationDependencies {
  hasher: PasswordHasher;
  mail: MailService;
  wallets: WalletService;
  audit: AuditService;
  limits: RateLimits;
  appUrl: string;
  /** Called after a commit that queued mail, to send it without waiting for the next poll. */
  mailQueued: () => void;
}

/**
 * Sign-up and e-mail verification. A request for an address or username that
 * is taken gets the same response as a new registration, and a mail informs the
 * address's owner instead, so the API reveals no accounts.
 */
export class RegistrationService {
  constructor(private readonly deps: RegistrationDependencies) {}

  async register(
    em: EntityManager,
    request: RegistrationRequest,
    ip: string,
  ): Promise<RegistrationOutcome> {
    await this.deps.limits.consume('registrationPerIp', ip);
    // Every registration mails the address, so it counts against the address's mail limit too.
    await this.deps.limits.consume(
      'mailPerAddress',
      `registration:${normaliseLogin(request.email)}`,
    );
    const check = checkPassword(request.password, {
      username: request.username,
      email: request.email,
    });
    if (!check.ok) return check;
    // Hashing comes before any look-up, so that taken and new registrations cost the same.
    const passwordHash = await this.deps.hasher.hash(request.password);

    try {
      await em.fork().transactional((tx) => this.createOrNotify(sqlFor(tx), request, passwordHash));
    } catch (error) {
      const { code } = pgErrorFields(error);
      if (code !== PG_UNIQUE_VIOLATION) throw error;
      // A concurrent registration took the address or username between the
      // look-up and the insert; the notice path handles it like any other.
      await em.fork().transactional((tx) => this.createOrNotify(sqlFor(tx), request, passwordHash));
    }
    this.deps.mailQueued();
    return { ok: true };
  }

  private async createOrNotify(
    sql: Sql,
    request: RegistrationRequest,
    passwordHash: string,
  ): Promise<void> {
    if (await findMemberByEmail(sql, request.email)) {
      await this.deps.mail.enqueue(sql, alreadyRegisteredMail(request.email));
      return;
    }
    const usernameTaken = await sql.one(`SELECT 1 FROM member WHERE lower(username) = ?`, [
      normaliseLogin(request.username),
    ]);
    if (usernameTaken) {
      await this.deps.mail.enqueue(sql, usernameTakenMail(request.email, request.username));
      return;
    }
    const member = await sql.one<{ id: string }>(
      'INSERT INTO member (email, username, password_hash) VALUES (?, ?, ?) RETURNING id',
      [request.email, request.username, passwordHash],
    );
    await this.deps.wallets.createForMember(sql, member!.id);
    await this.sendVerification(sql, member!.id, request.email, request.username);
  }

  /** Sends a new verification mail to an unverified address; other addresses get the same response. */
  async resendVerification(em: EntityManager, email: string): Promise<void> {
    await this.deps.limits.consume('mailPerAddress', `verification:${normaliseLogin(email)}`);
    await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberByEmail(sql, email);
      if (!member || member.emailVerified) return;
      // Only the newest link works, so an older mail read later cannot surprise anyone.
      await sql.query(
        `UPDATE member_token SET used_at = now()
          WHERE member_id = ? AND purpose = 'email_verification' AND used_at IS NULL`,
        [member.id],
      );
      await this.sendVerification(sql, member.id, member.email, member.username);
    });
    this.deps.mailQueued();
  }

  /** Marks the address verified and lets the wallet pay and receive; false for an unusable token. */
  async verifyEmail(em: EntityManager, token: string, ip: string): Promise<boolean> {
    if (!looksLikeToken(token, TOKEN_PREFIXES.emailVerification)) return false;
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const used = await sql.one<{ member_id: string }>(
        `UPDATE member_token SET used_at = now()
          WHERE token_hash = ? AND purpose = 'email_verification' AND used_at IS NULL AND expires_at > now()
          RETURNING member_id`,
        [hashToken(token)],
      );
      if (!used) return false;
      const verified = await sql.query(
        `UPDATE member SET email_verified_at = now()
          WHERE id = ? AND status = 'active' AND email_verified_at IS NULL RETURNING id`,
        [used.member_id],
      );
      if (verified.length === 0) return false;
      await this.deps.wallets.activate(sql, used.member_id);
      await this.deps.audit.record(sql, {
        action: 'email_verified',
        actorMemberId: used.member_id,
        ip,
      });
      return true;
    });
  }

  private async sendVerification(
    sql: Sql,
    memberId: string,
    email: string,
    username: string,
  ): Promise<void> {
    const { token, hash } = newToken(TOKEN_PREFIXES.emailVerification);
    const row = await sql.one<{ expires_at: string }>(
      `INSERT INTO member_token (member_id, purpose, token_hash, expires_at)
       VALUES (?, 'email_verification', ?, now() + make_interval(hours => ?)) RETURNING expires_at`,
      [memberId, hash, VERIFICATION_TTL_HOURS],
    );
    await this.deps.mail.enqueue(
      sql,
      verificationMail(email, username, token, this.deps.appUrl, new Date(row!.expires_at)),
    );
  }
}
