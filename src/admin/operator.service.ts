import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditEntry, AuditService } from '../audit/audit.service';
import type { Clock } from '../config/clock';
import { sqlFor, type Sql } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { PostingRequest, PostingResult, TransactionRecord } from '../ledger/ledger.types';
import { hasLoneSurrogate } from '../merchants/payment.validation';
import { fingerprint } from '../merchants/payment.service';
import type { MerchantService } from '../merchants/merchant.service';
import { findMemberById } from '../members/member.queries';
import type { MemberRole } from '../members/session.service';
import type { TwoFactorService } from '../members/two-factor.service';
import type { PrepaidIdKind, PrepaidIdStatus } from '../prepaid/prepaid-id.entity';
import { hasValidCheckDigit, normalisePrepaidId } from '../prepaid/prepaid-id';
import type { PrepaidIdService, ResolvedPrepaidId } from '../prepaid/prepaid-id.service';
import type { WalletService, WalletStatus } from '../wallets/wallet.service';
import { UnusedBalanceService, type UnusedBalance } from './unused-balance.service';

export interface OperatorDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  wallets: WalletService;
  merchants: MerchantService;
  twoFactor: TwoFactorService;
  audit: AuditService;
  clock: Clock;
}

/**
 * The source of an operator action: a signed-in operator over the API, who
 * must send a two-factor code for adjustments and credit limits, or the
 * operator CLI, which runs with database access and no session.
 */
export type OperatorActor = { via: 'api'; memberId: string; ip: string } | { via: 'cli' };

/** Raised for input with the wrong shape or range, before anything is read or written. */
export class OperatorInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

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

export interface AdjustmentRequest {
  prepaidId: string;
  amount: number;
  /** `credit` adds the amount to the prepaid ID's account, `debit` takes it away. */
  direction: 'credit' | 'debit';
  reason: string;
  /** Required for an API actor. The CLI sends none. */
  twoFactorCode?: string | null;
  idempotencyKey?: string | null;
}

export type AdjustmentOutcome =
  | { ok: true; transaction: TransactionRecord; ledgerAccountId: string; replayed: boolean }
  | { ok: false; code: 'NOT_FOUND' | 'INVALID_TWO_FACTOR_CODE' | 'IDEMPOTENCY_KEY_REUSED' }
  | { ok: false; code: 'INVALID_PREPAID_ID'; kind: PrepaidIdKind; status: PrepaidIdStatus }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number };

export interface CreditLimitRequest {
  /** The merchant's database id (a UUID), not its global ID. */
  merchantId: string;
  creditLimit: number;
  twoFactorCode?: string | null;
}

export type CreditLimitOutcome =
  | {
      ok: true;
      merchantId: string;
      previousCreditLimit: number;
      creditLimit: number;
      changed: boolean;
    }
  | { ok: false; code: 'NOT_FOUND' | 'INVALID_TWO_FACTOR_CODE' };

export type RoleOutcome =
  | { ok: true; memberId: string; username: string; twoFactorEnabled: boolean; changed: boolean }
  | { ok: false; code: 'NOT_FOUND' };

const MAX_REASON_LENGTH = 500;
const MAX_KEY_LENGTH = 255;
const MAX_USERNAME_LENGTH = 254;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Statuses in which an ID's account still accepts adjustments, unlike retired, spent and cancelled IDs. */
const ADJUSTABLE_STATUSES: readonly PrepaidIdStatus[] = ['pending', 'active', 'blocked'];

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

/**
 * Operators' work: blocking prepaid IDs, freezing wallets, balance
 * adjustments, merchant credit limits, operator roles and reports. Each
 * change writes its audit entry in the database transaction that makes it,
 * with the operator as actor, or no actor and `via: cli` for the CLI.
 */
export class OperatorService {
  private readonly unusedBalances = new UnusedBalanceService();

  constructor(private readonly deps: OperatorDependencies) {}

  /** Sets an active prepaid ID to `blocked`, so that it can no longer pay. */
  blockPrepaidId(
    em: EntityManager,
    actor: OperatorActor,
    request: { prepaidId: string; reason: string },
  ): Promise<PrepaidIdStatusOutcome> {
    return this.changePrepaidIdStatus(em, actor, request, {
      from: 'active',
      to: 'blocked',
      action: 'prepaid_id_blocked',
    });
  }

  /** Sets a blocked prepaid ID back to `active`. An ID in any other status stays as it is. */
  unblockPrepaidId(
    em: EntityManager,
    actor: OperatorActor,
    request: { prepaidId: string; reason: string },
  ): Promise<PrepaidIdStatusOutcome> {
    return this.changePrepaidIdStatus(em, actor, request, {
      from: 'blocked',
      to: 'active',
      action: 'prepaid_id_unblocked',
    });
  }

  /**
   * Sets an active wallet to `frozen`. Its own prepaid ID and its one-time
   * IDs cannot pay while it is frozen, and credits to it are rejected.
   */
  freezeWallet(
    em: EntityManager,
    actor: OperatorActor,
    request: { username: string; reason: string },
  ): Promise<WalletStatusOutcome> {
    return this.changeWalletStatus(em, actor, request, {
      from: 'active',
      to: 'frozen',
      action: 'wallet_frozen',
    });
  }

  /** Sets a frozen wallet back to `active`. */
  unfreezeWallet(
    em: EntityManager,
    actor: OperatorActor,
    request: { username: string; reason: string },
  ): Promise<WalletStatusOutcome> {
    return this.changeWalletStatus(em, actor, request, {
      from: 'frozen',
      to: 'active',
      action: 'wallet_unfrozen',
    });
  }

  /**
   * Credits or debits a wallet or card by a ledger posting of kind
   * `adjustment` against the operator adjustment account. An API actor needs
   * a fresh TOTP code, which is used up even when the posting then fails, so
   * every attempt needs a new code. A debit that would take the balance
   * below zero gets INSUFFICIENT_BALANCE from the ledger and moves nothing.
   */
  async adjustBalance(
    em: EntityManager,
    actor: OperatorActor,
    request: AdjustmentRequest,
  ): Promise<AdjustmentOutcome> {
    const digits = checkPrepaidIdDigits(request.prepaidId);
    checkPositivePoints(request.amount, 'amount');
    if (request.direction !== 'credit' && request.direction !== 'debit') {
      throw new OperatorInputError('direction', 'direction must be credit or debit');
    }
    const reason = checkReason(request.reason);
    const key = request.idempotencyKey ?? null;
    if (key !== null) checkIdempotencyKey(key);

    if (
      actor.via === 'api' &&
      !(await this.verifyTotp(em, actor.memberId, request.twoFactorCode))
    ) {
      return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' };
    }

    const sql = sqlFor(em);
    const prepaid = await this.deps.prepaidIds.resolve(sql, digits);
    if (!prepaid) return { ok: false, code: 'NOT_FOUND' };
    if (prepaid.kind === 'one_time') {
      return { ok: false, code: 'INVALID_PREPAID_ID', kind: prepaid.kind, status: prepaid.status };
    }
    const adjustmentAccountId = await this.deps.ledger.operatorAccountId(sql, 'adjustment');
    const credit = request.direction === 'credit';
    const actorMemberId = actor.via === 'api' ? actor.memberId : null;

    // The guard records what it found, so that a rejection can name the status.
    let rejected: ResolvedPrepaidId | undefined;
    const posting: PostingRequest = {
      kind: 'adjustment',
      debitAccountId: credit ? adjustmentAccountId : prepaid.ledgerAccountId,
      creditAccountId: credit ? prepaid.ledgerAccountId : adjustmentAccountId,
      amount: request.amount,
      prepaidIdId: prepaid.id,
      actorMemberId,
      description: reason,
      metadata: actor.via === 'cli' ? { via: 'cli' } : null,
      idempotency:
        key === null
          ? undefined
          : {
              scope: `operator:${actorMemberId ?? 'cli'}`,
              key,
              fingerprint: fingerprint([
                'adjustment',
                prepaid.lookupHash.toString('hex'),
                request.amount,
                request.direction,
                reason,
              ]),
            },
      // A withdrawal may have retired the ID since it was looked up; the
      // guard reads it again under the account lock.
      guard: async (locked) => {
        const current = await this.deps.prepaidIds.findById(locked, prepaid.id);
        if (current && ADJUSTABLE_STATUSES.includes(current.status)) return undefined;
        rejected = current ?? prepaid;
        return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
      },
    };

    const result = await this.deps.ledger.post(em, posting, async (locked, transaction) => {
      await this.deps.audit.record(locked, {
        action: 'balance_adjusted',
        ...(await this.auditActor(locked, actor, prepaid.ledgerAccountId)),
        details: {
          ...cliDetails(actor),
          reason,
          transactionId: transaction.id,
          direction: request.direction,
          amount: request.amount,
          prepaidIdId: prepaid.id,
          kind: prepaid.kind,
          lastDigits: prepaid.lastDigits,
        },
      });
    });
    return toAdjustmentOutcome(result, prepaid, rejected);
  }

  /**
   * Sets a merchant's credit limit, which is how far credits may take its
   * settlement account below zero. An API actor needs a fresh TOTP code.
   */
  async setMerchantCreditLimit(
    em: EntityManager,
    actor: OperatorActor,
    request: CreditLimitRequest,
  ): Promise<CreditLimitOutcome> {
    if (!Number.isSafeInteger(request.creditLimit) || request.creditLimit < 0) {
      throw new OperatorInputError(
        'creditLimit',
        `creditLimit must be a whole number of points, 0 or more, got ${request.creditLimit}`,
      );
    }
    if (
      actor.via === 'api' &&
      !(await this.verifyTotp(em, actor.memberId, request.twoFactorCode))
    ) {
      return { ok: false, code: 'INVALID_TWO_FACTOR_CODE' };
    }
    if (!UUID.test(request.merchantId)) return { ok: false, code: 'NOT_FOUND' };

    return em.fork().transactional(async (tx): Promise<CreditLimitOutcome> => {
      const sql = sqlFor(tx);
      const row = await sql.one<{ credit_limit: string }>(
        'SELECT credit_limit FROM merchant WHERE id = ? FOR UPDATE',
        [request.merchantId],
      );
      if (!row) return { ok: false, code: 'NOT_FOUND' };
      const previousCreditLimit = Number(row.credit_limit);
      const changed = previousCreditLimit !== request.creditLimit;
      if (changed) {
        await sql.query('UPDATE merchant SET credit_limit = ? WHERE id = ?', [
          request.creditLimit,
          request.merchantId,
        ]);
        await this.deps.audit.record(sql, {
          action: 'credit_limit_changed',
          merchantId: request.merchantId,
          ...(await this.auditActor(sql, actor)),
          details: {
            ...cliDetails(actor),
            merchantId: request.merchantId,
            previousCreditLimit,
            creditLimit: request.creditLimit,
          },
        });
      }
      return {
        ok: true,
        merchantId: request.merchantId,
        previousCreditLimit,
        creditLimit: request.creditLimit,
        changed,
      };
    });
  }

  /**
   * Gives a member the operator role, or takes it back with `member`. The
   * CLI alone does this, because an operator who could grant the role over
   * the API could spread a stolen session. An operator without two-factor
   * authentication is rejected by every operator operation.
   */
  async setRole(em: EntityManager, username: string, role: MemberRole): Promise<RoleOutcome> {
    const login = checkUsername(username);
    return em.fork().transactional(async (tx): Promise<RoleOutcome> => {
      const sql = sqlFor(tx);
      const member = await sql.one<{
        id: string;
        username: string;
        role: MemberRole;
        two_factor: boolean;
      }>(
        `SELECT id, username, role, totp_enabled_at IS NOT NULL AS two_factor FROM member
          WHERE lower(username) = lower(?) AND status = 'active' FOR UPDATE`,
        [login],
      );
      if (!member) return { ok: false, code: 'NOT_FOUND' };
      const changed = member.role !== role;
      if (changed) {
        await sql.query('UPDATE member SET role = ? WHERE id = ?', [role, member.id]);
        await this.deps.audit.record(sql, {
          action: role === 'operator' ? 'operator_granted' : 'operator_revoked',
          actorMemberId: null,
          subjectMemberId: member.id,
          details: { via: 'cli', previousRole: member.role, role },
        });
      }
      return {
        ok: true,
        memberId: member.id,
        username: member.username,
        twoFactorEnabled: member.two_factor,
        changed,
      };
    });
  }

  /** Sums the unused points of wallets and cards at a moment; see UnusedBalanceService. */
  unusedBalanceReport(em: EntityManager, asOf: Date): Promise<UnusedBalance> {
    return this.unusedBalances.reportAt(em, asOf);
  }

  private async changePrepaidIdStatus(
    em: EntityManager,
    actor: OperatorActor,
    request: { prepaidId: string; reason: string },
    change: StatusChange,
  ): Promise<PrepaidIdStatusOutcome> {
    const digits = checkPrepaidIdDigits(request.prepaidId);
    const reason = checkReason(request.reason);
    return em.fork().transactional(async (tx): Promise<PrepaidIdStatusOutcome> => {
      const sql = sqlFor(tx);
      const found = await this.deps.prepaidIds.resolve(sql, digits);
      if (!found) return { ok: false, code: 'NOT_FOUND' };
      // A charge checks the ID's status under this lock, so taking it waits
      // for charges in flight, and none can commit on a blocked ID afterwards.
      await this.deps.ledger.lockAccounts(sql, [found.ledgerAccountId]);
      const current = (await this.deps.prepaidIds.findById(sql, found.id))!;
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

      await this.deps.prepaidIds.setStatus(sql, current.id, change.to);
      await this.deps.audit.record(sql, {
        action: change.action,
        ...(await this.auditActor(sql, actor, current.ledgerAccountId)),
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

  private async changeWalletStatus(
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
      await this.deps.ledger.lockAccounts(sql, [found.ledgerAccountId]);
      // Read again under the lock: a withdrawal may have closed the wallet meanwhile.
      const wallet = await findWalletByUsername(sql, username);
      if (!wallet) return { ok: false, code: 'NOT_FOUND' };
      if (wallet.status === change.to) return { ok: true, wallet, changed: false };
      if (wallet.status !== change.from) return { ok: false, code: 'NOT_FOUND' };

      await sql.query('UPDATE wallet SET status = ? WHERE id = ?', [change.to, wallet.id]);
      await this.deps.audit.record(sql, {
        action: change.action,
        ...(await this.auditActor(sql, actor)),
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

  /**
   * Checks and uses up a TOTP code of the operator in a database transaction
   * of its own. Recovery codes are rejected here, because they are for
   * signing in after losing the authenticator, not for moving money.
   */
  private async verifyTotp(
    em: EntityManager,
    memberId: string,
    code: string | null | undefined,
  ): Promise<boolean> {
    if (!code || !/^\d{6}$/.test(code.replace(/\s/g, ''))) return false;
    return em.fork().transactional(async (tx) => {
      const sql = sqlFor(tx);
      const member = await findMemberById(sql, memberId);
      if (!member) throw new Error(`operator ${memberId} not found`);
      return (await this.deps.twoFactor.verifyCode(sql, member, code)) === 'totp';
    });
  }

  /**
   * The actor, IP and subject columns of an audit entry. The subject is the
   * owner of the wallet behind `ledgerAccountId`, when there is one.
   */
  private async auditActor(
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

/** Maps the ledger's result of an adjustment to the operator's outcome. */
function toAdjustmentOutcome(
  result: PostingResult,
  prepaid: ResolvedPrepaidId,
  rejected: ResolvedPrepaidId | undefined,
): AdjustmentOutcome {
  if (result.ok) {
    return {
      ok: true,
      transaction: result.transaction,
      ledgerAccountId: prepaid.ledgerAccountId,
      replayed: result.replayed,
    };
  }
  switch (result.code) {
    case 'INSUFFICIENT_BALANCE':
      return { ok: false, code: 'INSUFFICIENT_BALANCE', available: result.available };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
    case 'REJECTED': {
      const found = rejected ?? prepaid;
      return { ok: false, code: 'INVALID_PREPAID_ID', kind: found.kind, status: found.status };
    }
    default:
      throw new Error(`unexpected ledger failure ${result.code} for an adjustment`);
  }
}

function cliDetails(actor: OperatorActor): { via?: 'cli' } {
  return actor.via === 'cli' ? { via: 'cli' } : {};
}

/** Returns the canonical 16 digits, or raises OperatorInputError for a typing mistake. */
function checkPrepaidIdDigits(input: string): string {
  const digits = normalisePrepaidId(input);
  if (!digits || !hasValidCheckDigit(digits)) {
    throw new OperatorInputError(
      'prepaidId',
      'prepaidId must be 16 digits with a valid check digit; spaces and hyphens are ignored',
    );
  }
  return digits;
}

/** Returns the reason trimmed, or raises OperatorInputError when it is empty, too long or not text. */
function checkReason(reason: string): string {
  const trimmed = reason.trim();
  if (
    trimmed.length < 1 ||
    trimmed.length > MAX_REASON_LENGTH ||
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(trimmed) ||
    hasLoneSurrogate(trimmed)
  ) {
    throw new OperatorInputError(
      'reason',
      `reason is required: 1 to ${MAX_REASON_LENGTH} characters of text without control characters`,
    );
  }
  return trimmed;
}

function checkUsername(username: string): string {
  const trimmed = username.trim();
  if (trimmed.length < 1 || trimmed.length > MAX_USERNAME_LENGTH) {
    throw new OperatorInputError('username', 'username is required');
  }
  return trimmed;
}

function checkPositivePoints(amount: number, field: string): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    throw new OperatorInputError(
      field,
      `${field} must be a positive whole number of points, got ${amount}`,
    );
  }
}

function checkIdempotencyKey(key: string): void {
  if (key.length < 1 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new OperatorInputError(
      'idempotencyKey',
      `idempotencyKey must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters without spaces`,
    );
  }
}
