import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import type { Clock } from '../config/clock';
import { sqlFor } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import type { MerchantService } from '../merchants/merchant.service';
import type { MemberRole } from '../members/session.service';
import type { TwoFactorService } from '../members/two-factor.service';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { WalletService } from '../wallets/wallet.service';
import {
  adjustBalance,
  type AdjustmentOutcome,
  type AdjustmentRequest,
} from './operator-adjustment';
import { auditActor, cliDetails, verifyOperatorTotp, type OperatorActor } from './operator-actor';
import { checkUsername, OperatorInputError } from './operator-input';
import {
  changePrepaidIdStatus,
  changeWalletStatus,
  type PrepaidIdStatusOutcome,
  type WalletStatusOutcome,
} from './operator-status-change';
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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
    return changePrepaidIdStatus(this.deps, em, actor, request, {
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
    return changePrepaidIdStatus(this.deps, em, actor, request, {
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
    return changeWalletStatus(this.deps, em, actor, request, {
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
    return changeWalletStatus(this.deps, em, actor, request, {
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
  adjustBalance(
    em: EntityManager,
    actor: OperatorActor,
    request: AdjustmentRequest,
  ): Promise<AdjustmentOutcome> {
    return adjustBalance(this.deps, em, actor, request);
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
      !(await verifyOperatorTotp(this.deps.twoFactor, em, actor.memberId, request.twoFactorCode))
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
          ...(await auditActor(sql, actor)),
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
}
