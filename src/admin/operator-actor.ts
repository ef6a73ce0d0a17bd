// The actor of an operator action: who performs it, how an API actor's TOTP
// code is checked, and which audit columns and details the action records.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditEntry } from '../audit/audit.service';
import { sqlFor, type Sql } from '../database/sql';
import { findMemberById } from '../members/member.queries';
import type { TwoFactorService } from '../members/two-factor.service';

/**
 * The source of an operator action: a signed-in operator over the API, who
 * must send a two-factor code for adjustments and credit limits, or the
 * operator CLI, which runs with database access and no session.
 */
export type OperatorActor = { via: 'api'; memberId: string; ip: string } | { via: 'cli' };

/**
 * Checks and uses up a TOTP code of the operator in a database transaction
 * of its own. Recovery codes are rejected here, because they are for
 * signing in after losing the authenticator, not for moving money.
 */
export async function verifyOperatorTotp(
  twoFactor: TwoFactorService,
  em: EntityManager,
  memberId: string,
  code: string | null | undefined,
): Promise<boolean> {
  if (!code || !/^\d{6}$/.test(code.replace(/\s/g, ''))) return false;
  return em.fork().transactional(async (tx) => {
    const sql = sqlFor(tx);
    const member = await findMemberById(sql, memberId);
    if (!member) throw new Error(`operator ${memberId} not found`);
    return (await twoFactor.verifyCode(sql, member, code)) === 'totp';
  });
}

/**
 * Returns the actor, IP and subject columns of an audit entry. The subject is
 * the owner of the wallet behind `ledgerAccountId`, when there is one.
 */
export async function auditActor(
  sql: Sql,
  actor: OperatorActor,
  ledgerAccountId?: string,
): Promise<Pick<AuditEntry, 'actorMemberId' | 'subjectMemberId' | 'ip'>> {
  const owner = ledgerAccountId
    ? await sql.one<{ member_id: string }>(
        'SELECT member_id FROM wallet WHERE ledger_account_id = ?',
        [ledgerAccountId],
      )
    : undefined;
  return {
    actorMemberId: actor.via === 'api' ? actor.memberId : null,
    subjectMemberId: owner?.member_id ?? null,
    ip: actor.via === 'api' ? actor.ip : '',
  };
}

export function cliDetails(actor: OperatorActor): { via?: 'cli' } {
  return actor.via === 'cli' ? { via: 'cli' } : {};
}
