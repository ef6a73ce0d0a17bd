import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor } from '../database/sql';
import type { WalletService } from '../wallets/wallet.service';
import { findMemberById, type MemberRecord } from './member.queries';
import type { SessionCaller, SessionService, SessionSummary } from './session.service';
import type { TwoFactorService } from './two-factor.service';

export type RevealOutcome =
  | { ok: true; prepaidId: string }
  | { ok: false; code: 'TWO_FACTOR_CODE_REQUIRED' | 'INVALID_TWO_FACTOR_CODE' };

/** The signed-in member's own account: profile and sessions. */
export class AccountService {
  constructor(
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly wallets: WalletService,
    private readonly twoFactor: TwoFactorService,
  ) {}

  /**
   * Returns the full digits of the member's wallet prepaid ID. With two-factor
   * authentication on, it needs a fresh code, because the ID is a bearer
   * credential that anyone can pay with.
   */
  async revealPrepaidId(
    em: EntityManager,
    memberId: string,
    code: string | null,
    ip: string,
  ): Promise<RevealOutcome> {
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberById(sql, memberId);
      if (!member) throw new Error(`member ${memberId} not found`);
      if (member.twoFactorEnabled) {
        if (!code) return { ok: false, code: 'TWO_FACTOR_CODE_REQUIRED' } as const;
        if (!(await this.twoFactor.verifyCode(sql, member, code))) {
          return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' } as const;
        }
      }
      const prepaidId = await this.wallets.revealPrepaidId(sql, memberId);
      await this.audit.record(sql, { action: 'prepaid_id_revealed', actorMemberId: memberId, ip });
      return { ok: true, prepaidId } as const;
    });
  }

  async profile(em: EntityManager, memberId: string): Promise<MemberRecord | undefined> {
    return findMemberById(sqlFor(em), memberId);
  }

  async listSessions(em: EntityManager, memberId: string): Promise<SessionSummary[]> {
    return this.sessions.list(sqlFor(em), memberId);
  }

  /** Ends one of the caller's sessions; returns false for an unknown or already ended one. */
  async endSession(
    em: EntityManager,
    caller: SessionCaller,
    sessionId: string,
    ip: string,
  ): Promise<boolean> {
    const ended = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const found = await this.sessions.end(sql, caller.memberId, sessionId, 'signed out');
      if (found) {
        await this.audit.record(sql, {
          action: 'sign_out',
          actorMemberId: caller.memberId,
          ip,
          details: { sessionId },
        });
      }
      return found;
    });
    if (ended) this.sessions.onEnded([sessionId]);
    return ended;
  }

  /** Ends every session of the caller, the current one included; returns how many. */
  async endAllSessions(em: EntityManager, caller: SessionCaller, ip: string): Promise<number> {
    const ended = await em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const ids = await this.sessions.endAll(sql, caller.memberId, 'signed out everywhere');
      await this.audit.record(sql, {
        action: 'sign_out_everywhere',
        actorMemberId: caller.memberId,
        ip,
        details: { endedSessions: ids.length },
      });
      return ids;
    });
    this.sessions.onEnded(ended);
    return ended.length;
  }
}
