import type { EntityManager } from '@mikro-orm/postgresql';
import type { Clock } from '../config/clock';
import { sqlFor } from '../database/sql';
import { findByIdempotencyKey } from '../ledger/idempotency';
import type { LedgerService } from '../ledger/ledger.service';
import type { TransactionRecord } from '../ledger/ledger.types';
import { canPay } from '../prepaid/payment-guard';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { RateLimits } from '../rate-limit/rate-limits';
import { receivingWalletGuard } from '../wallets/receiving-guard';
import type { MerchantService } from './merchant.service';
import { fingerprint } from './payment.service';

export interface CreditRequest {
  prepaidId: string;
  amount: number;
  idempotencyKey: string;
  orderReference?: string | null;
  description?: string | null;
}

export type CreditOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean }
  | { ok: false; code: 'INVALID_PREPAID_ID' | 'IDEMPOTENCY_KEY_REUSED' }
  | { ok: false; code: 'AMOUNT_LIMIT_EXCEEDED'; maximum: number }
  | { ok: false; code: 'CREDIT_LIMIT_EXCEEDED'; available: number }
  | { ok: false; code: 'WALLET_BALANCE_LIMIT_EXCEEDED'; maximum: number; balance: number };

export interface CreditDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  merchants: MerchantService;
  clock: Clock;
  maxTransactionAmount: number;
  maxWalletBalance: number;
  limits: RateLimits;
}

/**
 * `creditPoints`: a merchant pays incentives or earnings into a wallet from
 * its settlement account. The settlement balance may go below zero only as
 * far as the merchant's credit limit, which is 0 unless an operator set
 * one, so by default a merchant can pay out only what it has earned.
 */
export class CreditService {
  constructor(private readonly deps: CreditDependencies) {}

  /** Credits a wallet; `inquiryKey` is the caller's key for the balance-inquiry rate limit. */
  async credit(
    em: EntityManager,
    merchantId: string,
    request: CreditRequest,
    inquiryKey?: string,
  ): Promise<CreditOutcome> {
    const sql = sqlFor(em);
    const scope = `merchant:${merchantId}`;
    const target = await this.deps.prepaidIds.resolve(sql, request.prepaidId);
    const requestFingerprint = fingerprint([
      'credit',
      target?.lookupHash.toString('hex') ?? `invalid:${request.prepaidId}`,
      request.amount,
      request.orderReference ?? null,
      request.description ?? null,
    ]);

    // A retry returns the first result even if the wallet was frozen since.
    const earlier = await findByIdempotencyKey(sql, scope, request.idempotencyKey);
    if (earlier) {
      if (!earlier.fingerprint.equals(requestFingerprint))
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      return { ok: true, transaction: earlier.transaction, replayed: true };
    }

    if (request.amount > this.deps.maxTransactionAmount) {
      return { ok: false, code: 'AMOUNT_LIMIT_EXCEEDED', maximum: this.deps.maxTransactionAmount };
    }
    // Credits go to a wallet's own ID only: not to cards, and not to one-time IDs, which are for paying.
    if (!target || target.kind !== 'wallet' || !canPay(target, 1, this.deps.clock.now())) {
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    }

    const result = await this.deps.ledger.post(em, {
      kind: 'credit',
      debitAccountId: await this.deps.merchants.settlementAccountId(sql, merchantId),
      creditAccountId: target.ledgerAccountId,
      amount: request.amount,
      merchantId,
      prepaidIdId: target.id,
      orderReference: request.orderReference ?? null,
      description: request.description ?? null,
      idempotency: { scope, key: request.idempotencyKey, fingerprint: requestFingerprint },
      // The merchant's own limit is checked before anything about the
      // wallet, so that a merchant who cannot pay learns nothing about it.
      guard: async (locked, accounts) => {
        const current = await this.deps.prepaidIds.findById(locked, target.id);
        if (!current || current.status !== 'active') {
          return { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
        }
        const limit = await locked.one<{ credit_limit: string }>(
          'SELECT credit_limit FROM merchant WHERE id = ?',
          [merchantId],
        );
        const available = Math.max(0, accounts.debit.balancePosted + Number(limit!.credit_limit));
        if (request.amount > available) return { code: 'CREDIT_LIMIT_EXCEEDED', available };
        return receivingWalletGuard(request.amount, this.deps.maxWalletBalance)(locked, accounts);
      },
    });
    if (result.ok) return result;
    switch (result.code) {
      case 'CREDIT_LIMIT_EXCEEDED':
        return { ok: false, code: result.code, available: result.available };
      case 'WALLET_BALANCE_LIMIT_EXCEEDED':
        // Each such answer says something about the wallet's balance, so it
        // counts as a balance inquiry of the merchant's key.
        if (inquiryKey) await this.deps.limits.consume('inquiryPerCaller', inquiryKey);
        return { ok: false, code: result.code, maximum: result.maximum, balance: result.balance };
      case 'IDEMPOTENCY_KEY_REUSED':
        return { ok: false, code: result.code };
      case 'REJECTED':
        return { ok: false, code: 'INVALID_PREPAID_ID' };
      default:
        throw new Error(`unexpected credit failure ${result.code}`);
    }
  }
}
