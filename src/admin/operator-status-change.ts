// The status changes behind OperatorService's blockPrepaidId, unblockPrepaidId,
// freezeWallet and unfreezeWallet, each written with its audit entry.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor, type Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { PrepaidIdKind, PrepaidIdStatus } from '../prepaid/prepaid-id.entity';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { WalletStatus } from '../wallets/wallet.service';
import { auditActor, cliDetails, type OperatorActor } from './operator-actor';
import { checkPrepaidIdDigits, checkReason, checkUsername } from './operator-input';

export interface PrepaidIdSummary {
  id: string;
  kind: PrepaidIdKind;
  status: PrepaidIdStatus;
  lastDigits: string;
}

export type PrepaidIdStatusOutcome =
  | { ok: true; prepaidId: PrepaidIdSummary; changed: boolean }
  | { ok: false; code: 'NOT_FOUND' }
  | { ok: false; code: 'INVALID_PREPAID_ID'; kind: PrepaidIdKind; status: PrepaidIdStatus };

export interface WalletSummary {
  id: string;
  memberId: string;
  username: string;
  status: WalletStatus;
}

export type WalletStatusOutcome =
  { ok: true; wallet: WalletSummary; changed: boolean } | { ok: false; code: 'NOT_FOUND' };

/** The services that a status change uses. OperatorService passes its own. */
export interface StatusChangeDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  audit: AuditService;
}

interface StatusChange {
  from: PrepaidIdStatus;
  to: PrepaidIdStatus;
  action: 'prepaid_id_blocked' | 'prepaid_id_unblocked';
}

interface WalletChange {
  from: WalletStatus;
  to: WalletStatus;
  action: 'wallet_frozen' | 'wallet_unfrozen';
}

export async function changePrepaidIdStatus(
  deps: StatusChangeDependencies,
  em: EntityManager,
  actor: OperatorActor,
  request: { prepaidId: string; reason: string },
  change: StatusChange,
): Promise<PrepaidIdStatusOutcome> {
  const digits = checkPrepaidIdDigits(request.prepaidId);
  const reason = checkReason(request.reason);
  return em.fork().transactional(async (tx): Promise<PrepaidIdStatusOutcome> => {
    const sql = sqlFor(tx);
    const found = await deps.prepaidIds.resolve(sql, digits);
    if (!found) return { ok: false, code: 'NOT_FOUND' };
    // A charge checks the ID's status under this lock, so taking it waits
    // for charges in flight, and none can commit on a blocked ID afterwards.
    await deps.ledger.lockAccounts(sql, [found.ledgerAccountId]);
    const current = (await deps.prepaidIds.findById(sql, found.id))!;
    const summary: PrepaidIdSummary = {
      id: current.id,
      kind: current.kind,
      status: current.status,
      lastDigits: current.lastDigits,
    };
    if (current.status === change.to) return { ok: true, prepaidId: summary, changed: false };
    if (current.status !== change.from) {
      return {
        ok: false,
        code: 'INVALID_PREPAID_ID',
        kind: current.kind,
        status: current.status,
      };
    }

    await deps.prepaidIds.setStatus(sql, current.id, change.to);
    await deps.audit.record(sql, {
      action: change.action,
      ...(await auditActor(sql, actor, current.ledgerAccountId)),
      details: {
        ...cliDetails(actor),
        reason,
        prepaidIdId: current.id,
        kind: current.kind,
        lastDigits: current.lastDigits,
        previousStatus: current.status,
      },
    });
    return { ok: true, prepaidId: { ...summary, status: change.to }, changed: true };
  });
}

export async function changeWalletStatus(
  deps: StatusChangeDependencies,
  em: EntityManager,
  actor: OperatorActor,
  request: { username: string; reason: string },
  change: WalletChange,
): Promise<WalletStatusOutcome> {
  const username = checkUsername(request.username);
  const reason = checkReason(request.reason);
  return em.fork().transactional(async (tx): Promise<WalletStatusOutcome> => {
    const sql = sqlFor(tx);
    const found = await findWalletByUsername(sql, username);
    if (!found) return { ok: false, code: 'NOT_FOUND' };
    // Charges check the wallet's status under this lock, as for blocking an ID.
    await deps.ledger.lockAccounts(sql, [found.ledgerAccountId]);
    // Read again under the lock: a withdrawal may have closed the wallet meanwhile.
    const wallet = await findWalletByUsername(sql, username);
    if (!wallet) return { ok: false, code: 'NOT_FOUND' };
    if (wallet.status === change.to) return { ok: true, wallet, changed: false };
    if (wallet.status !== change.from) return { ok: false, code: 'NOT_FOUND' };

    await sql.query('UPDATE wallet SET status = ? WHERE id = ?', [change.to, wallet.id]);
    await deps.audit.record(sql, {
      action: change.action,
      ...(await auditActor(sql, actor)),
      subjectMemberId: wallet.memberId,
      details: {
        ...cliDetails(actor),
        reason,
        walletId: wallet.id,
        previousStatus: wallet.status,
      },
    });
    return { ok: true, wallet: { ...wallet, status: change.to }, changed: true };
  });
}

interface WalletRow {
  id: string;
  memberId: string;
  username: string;
  status: WalletStatus;
  ledgerAccountId: string;
}

async function findWalletByUsername(sql: Sql, username: string): Promise<WalletRow | undefined> {
  const row = await sql.one<{
    id: string;
    member_id: string;
    username: string;
    status: WalletStatus;
    ledger_account_id: string;
  }>(
    `SELECT w.id, w.member_id, m.username, w.status, w.ledger_account_id
       FROM member m JOIN wallet w ON w.member_id = m.id
      WHERE lower(m.username) = lower(?) AND m.status = 'active'`,
    [username],
  );
  return (
    row && {
      id: row.id,
      memberId: row.member_id,
      username: row.username,
      status: row.status,
      ledgerAccountId: row.ledger_account_id,
    }
  );
}
