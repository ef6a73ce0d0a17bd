import { arrayLiteral, type Sql } from '../database/sql';
import { hashToken, looksLikeToken, newToken, TOKEN_PREFIXES } from './tokens';

export type MemberRole = 'member' | 'operator';

/** A signed-in member, as found from a session token. */
export interface SessionCaller {
  sessionId: string;
  memberId: string;
  role: MemberRole;
  twoFactorEnabled: boolean;
}

export interface SessionSummary {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  ip: string;
  userAgent: string;
}

export interface SessionPolicy {
  idleMinutes: number;
  maxHours: number;
}

export interface ClientInfo {
  ip: string;
  userAgent: string;
}

// Recording every request's time would write a row per request; a minute's
// precision is enough to enforce an idle timeout measured in minutes.
const TOUCH_INTERVAL_SECONDS = 60;

/**
 * Member sessions. A session has an absolute expiry from its start and an
 * idle expiry from its last use; the token itself is never stored.
 */
export class SessionService {
  /** Receives the ids of sessions just ended, to close their subscriptions on every instance. */
  onEnded: (sessionIds: string[]) => void = () => undefined;

  constructor(private readonly policy: SessionPolicy) {}

  async create(
    sql: Sql,
    memberId: string,
    client: ClientInfo,
  ): Promise<{ token: string; expiresAt: Date }> {
    const { token, hash } = newToken(TOKEN_PREFIXES.session);
    const row = await sql.one<{ expires_at: string }>(
      `INSERT INTO member_session (member_id, token_hash, expires_at, ip, user_agent)
       VALUES (?, ?, now() + make_interval(hours => ?), ?, ?) RETURNING expires_at`,
      [memberId, hash, this.policy.maxHours, client.ip, client.userAgent.slice(0, 300)],
    );
    return { token, expiresAt: new Date(row!.expires_at) };
  }

  /** Returns the caller of a live session token and records its use, or undefined. */
  async authenticate(sql: Sql, token: string): Promise<SessionCaller | undefined> {
    if (!looksLikeToken(token, TOKEN_PREFIXES.session)) return undefined;
    const row = await sql.one<{
      id: string;
      member_id: string;
      role: MemberRole;
      two_factor: boolean;
      stale: boolean;
    }>(
      `SELECT s.id, s.member_id, m.role, m.totp_enabled_at IS NOT NULL AS two_factor,
              s.last_used_at < now() - make_interval(secs => ?) AS stale
         FROM member_session s JOIN member m ON m.id = s.member_id
        WHERE s.token_hash = ? AND s.ended_at IS NULL AND s.expires_at > now()
          AND s.last_used_at > now() - make_interval(mins => ?)
          AND m.status = 'active'`,
      [TOUCH_INTERVAL_SECONDS, hashToken(token), this.policy.idleMinutes],
    );
    if (!row) return undefined;
    if (row.stale) {
      // A logout that committed since the read above ends the session here too,
      // because the update waits for its row lock and then matches nothing.
      const touched = await sql.one<{ id: string }>(
        'UPDATE member_session SET last_used_at = now() WHERE id = ? AND ended_at IS NULL RETURNING id',
        [row.id],
      );
      if (!touched) return undefined;
    }
    return {
      sessionId: row.id,
      memberId: row.member_id,
      role: row.role,
      twoFactorEnabled: row.two_factor,
    };
  }

  /**
   * Returns the ids among `sessionIds` of sessions still live, by the same
   * rules as authenticate, to close the subscriptions and connections of the others.
   */
  async liveSessionIds(sql: Sql, sessionIds: string[]): Promise<Set<string>> {
    if (sessionIds.length === 0) return new Set();
    const rows = await sql.query<{ id: string }>(
      `SELECT id FROM member_session
        WHERE id = ANY(?::uuid[]) AND ended_at IS NULL AND expires_at > now()
          AND last_used_at > now() - make_interval(mins => ?)`,
      [arrayLiteral(sessionIds), this.policy.idleMinutes],
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Records that the sessions are in use, as long as a subscription keeps
   * them open. A session that went idle meanwhile stays ended.
   */
  async touch(sql: Sql, sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    await sql.query(
      `UPDATE member_session SET last_used_at = now()
        WHERE id = ANY(?::uuid[]) AND ended_at IS NULL
          AND last_used_at > now() - make_interval(mins => ?)`,
      [arrayLiteral(sessionIds), this.policy.idleMinutes],
    );
  }

  async list(sql: Sql, memberId: string): Promise<SessionSummary[]> {
    const rows = await sql.query<{
      id: string;
      created_at: string;
      last_used_at: string;
      expires_at: string;
      ip: string;
      user_agent: string;
    }>(
      `SELECT id, created_at, last_used_at, expires_at, ip, user_agent FROM member_session
        WHERE member_id = ? AND ended_at IS NULL AND expires_at > now()
          AND last_used_at > now() - make_interval(mins => ?)
        ORDER BY created_at DESC, id`,
      [memberId, this.policy.idleMinutes],
    );
    return rows.map((row) => ({
      id: row.id,
      createdAt: new Date(row.created_at),
      lastUsedAt: new Date(row.last_used_at),
      expiresAt: new Date(row.expires_at),
      ip: row.ip,
      userAgent: row.user_agent,
    }));
  }

  /** Ends one session of the member; returns whether it was live. */
  async end(sql: Sql, memberId: string, sessionId: string, reason: string): Promise<boolean> {
    const rows = await sql.query<{ id: string }>(
      `UPDATE member_session SET ended_at = now(), end_reason = ?
        WHERE id = ? AND member_id = ? AND ended_at IS NULL RETURNING id`,
      [reason, sessionId, memberId],
    );
    return rows.length > 0;
  }

  /** Ends every session of the member except `keepSessionId`; returns the ids ended. */
  async endAll(
    sql: Sql,
    memberId: string,
    reason: string,
    keepSessionId?: string,
  ): Promise<string[]> {
    const rows = await sql.query<{ id: string }>(
      `UPDATE member_session SET ended_at = now(), end_reason = ?
        WHERE member_id = ? AND ended_at IS NULL AND id IS DISTINCT FROM ?::uuid RETURNING id`,
      [reason, memberId, keepSessionId ?? null],
    );
    return rows.map((row) => row.id);
  }
}
