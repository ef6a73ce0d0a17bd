import type { Sql } from '../database/sql';

export const AUDIT_ACTIONS = [
  'sign_in',
  'sign_in_failed',
  'sign_out',
  'sign_out_everywhere',
  'email_verified',
  'two_factor_enabled',
  'two_factor_disabled',
  'recovery_code_used',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'username_reminder_requested',
  'prepaid_id_revealed',
  'withdrawal',
  'prepaid_id_rotated',
  'one_time_prepaid_id_created',
  'one_time_prepaid_id_cancelled',
  'top_up',
  'prepaid_id_blocked',
  'prepaid_id_unblocked',
  'wallet_frozen',
  'wallet_unfrozen',
  'balance_adjusted',
  'credit_limit_changed',
  'operator_granted',
  'operator_revoked',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  action: AuditAction;
  /** The member who acted; null for an anonymous attempt. */
  actorMemberId?: string | null;
  /** The member the action concerns, when it differs from the actor or there is none. */
  subjectMemberId?: string | null;
  /** The merchant the action concerns, if any. */
  merchantId?: string | null;
  ip?: string;
  /** Facts of the action; never a password, token, code or secret. */
  details?: Record<string, unknown>;
}

/** Appends security-relevant events to the audit log. */
export class AuditService {
  /** Writes an entry with the caller's Sql, so that it commits or rolls back with the action. */
  async record(sql: Sql, entry: AuditEntry): Promise<void> {
    await sql.query(
      `INSERT INTO audit_log (action, actor_member_id, subject_member_id, merchant_id, ip, details)
       VALUES (?, ?, ?, ?, ?, ?::jsonb)`,
      [
        entry.action,
        entry.actorMemberId ?? null,
        entry.subjectMemberId ?? entry.actorMemberId ?? null,
        entry.merchantId ?? null,
        entry.ip ?? '',
        JSON.stringify(entry.details ?? {}),
      ],
    );
  }
}
