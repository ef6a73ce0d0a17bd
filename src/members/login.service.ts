import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor } from '../database/sql';
import type { RateLimits } from '../rate-limit/rate-limits';
import {
  findMemberById,
  findMemberByLogin,
  normaliseLogin,
  type MemberRecord,
} from './member.queries';
import type { PasswordHasher } from './password-hasher';
import type { ClientInfo, SessionService } from './session.service';
import { hashToken, looksLikeToken, newToken, TOKEN_PREFIXES } from './tokens';
import type { TwoFactorService } from './two-factor.service';

const CHALLENGE_TTL_SECONDS = 5 * 60;

export type LoginOutcome =
  | { kind: 'session'; token: string; expiresAt: Date; memberId: string }
  | { kind: 'challenge'; challengeToken: string; expiresAt: Date }
  | {
      kind: 'failed';
      code: 'INVALID_CREDENTIALS' | 'INVALID_TWO_FACTOR_CODE' | 'LOGIN_CHALLENGE_INVALID';
    };

export interface LoginDependencies {
  hasher: PasswordHasher;
  sessions: SessionService;
  twoFactor: TwoFactorService;
  limits: RateLimits;
  audit: AuditService;
}

/**
 * Sign-in with a username or e-mail address and a password, followed by a
 * TOTP or recovery code when two-factor authentication is on. Unknown
 * members cost the same as known ones: the password is checked against a
 * dummy hash, and the response is the same.
 */
export class LoginService {
  constructor(private readonly deps: LoginDependencies) {}

  async login(
    em: EntityManager,
    login: string,
    password: string,
    client: ClientInfo,
  ): Promise<LoginOutcome> {
    await this.deps.limits.consume('loginPerIp', client.ip);
    await this.deps.limits.consume('loginPerAccount', normaliseLogin(login));
    const sql = sqlFor(em);
    const member = await findMemberByLogin(sql, login);
    if (!member) {
      await this.deps.hasher.verifyDummy(password);
      await this.deps.audit.record(sql, {
        action: 'sign_in_failed',
        ip: client.ip,
        details: { reason: 'unknown login' },
      });
      return { kind: 'failed', code: 'INVALID_CREDENTIALS' };
    }
    if (!(await this.deps.hasher.verify(member.passwordHash, password))) {
      await this.deps.audit.record(sql, {
        action: 'sign_in_failed',
        subjectMemberId: member.id,
        ip: client.ip,
        details: { reason: 'wrong password' },
      });
      return { kind: 'failed', code: 'INVALID_CREDENTIALS' };
    }

    if (member.twoFactorEnabled) {
      const { token, hash } = newToken(TOKEN_PREFIXES.challenge);
      const row = await sql.one<{ expires_at: string }>(
        `INSERT INTO login_challenge (member_id, token_hash, expires_at, ip, user_agent)
         VALUES (?, ?, now() + make_interval(secs => ?), ?, ?) RETURNING expires_at`,
        [member.id, hash, CHALLENGE_TTL_SECONDS, client.ip, client.userAgent.slice(0, 300)],
      );
      return { kind: 'challenge', challengeToken: token, expiresAt: new Date(row!.expires_at) };
    }

    // A right password clears the account's failed attempts, so that signing
    // in often does not lock a member out.
    await this.deps.limits.reset('loginPerAccount', normaliseLogin(login));
    return em.fork().transactional(async (tx) => {
      const session = await this.deps.sessions.create(sqlFor(tx), member.id, client);
      await this.deps.audit.record(sqlFor(tx), {
        action: 'sign_in',
        actorMemberId: member.id,
        ip: client.ip,
      });
      return { kind: 'session', ...session, memberId: member.id } as const;
    });
  }

  /** Completes a sign-in that needs a second factor. A challenge yields at most one session. */
  async completeLogin(
    em: EntityManager,
    challengeToken: string,
    code: string,
    client: ClientInfo,
  ): Promise<LoginOutcome> {
    if (!looksLikeToken(challengeToken, TOKEN_PREFIXES.challenge)) {
      return { kind: 'failed', code: 'LOGIN_CHALLENGE_INVALID' };
    }
    const tokenHash = hashToken(challengeToken);
    await this.deps.limits.consume('codePerChallenge', tokenHash.toString('hex'));

    let signedIn: MemberRecord | undefined;
    const outcome = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      // Locking the challenge makes concurrent completions wait, so that only
      // the first correct code turns it into a session.
      const challenge = await sql.one<{ id: string; member_id: string }>(
        `SELECT id, member_id FROM login_challenge
          WHERE token_hash = ? AND completed_at IS NULL AND expires_at > now() FOR UPDATE`,
        [tokenHash],
      );
      if (!challenge) return { kind: 'failed', code: 'LOGIN_CHALLENGE_INVALID' } as const;
      const member = await findMemberById(sql, challenge.member_id);
      if (!member || !member.twoFactorEnabled)
        return { kind: 'failed', code: 'LOGIN_CHALLENGE_INVALID' } as const;

      const accepted = await this.deps.twoFactor.verifyCode(sql, member, code);
      if (!accepted) {
        await this.deps.audit.record(sql, {
          action: 'sign_in_failed',
          subjectMemberId: member.id,
          ip: client.ip,
          details: { reason: 'wrong two-factor code' },
        });
        return { kind: 'failed', code: 'INVALID_TWO_FACTOR_CODE' } as const;
      }
      await sql.query('UPDATE login_challenge SET completed_at = now() WHERE id = ?', [
        challenge.id,
      ]);
      const session = await this.deps.sessions.create(sql, member.id, client);
      await this.deps.audit.record(sql, {
        action: accepted === 'recovery' ? 'recovery_code_used' : 'sign_in',
        actorMemberId: member.id,
        ip: client.ip,
        details: { secondFactor: accepted },
      });
      if (accepted === 'recovery') {
        await this.deps.audit.record(sql, {
          action: 'sign_in',
          actorMemberId: member.id,
          ip: client.ip,
          details: { secondFactor: accepted },
        });
      }
      signedIn = member;
      return { kind: 'session', ...session, memberId: member.id } as const;
    });
    if (signedIn) {
      // A completed sign-in clears the account's failed attempts, as a right
      // password does for a member without two-factor authentication. The
      // challenge does not store whether the member typed the username or
      // the address, so the counters of both are cleared.
      await this.deps.limits.reset('loginPerAccount', normaliseLogin(signedIn.username));
      await this.deps.limits.reset('loginPerAccount', normaliseLogin(signedIn.email));
    }
    return outcome;
  }
}
