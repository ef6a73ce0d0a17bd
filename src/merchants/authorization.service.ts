import type { EntityManager } from '@mikro-orm/postgresql';
import type { Clock } from '../config/clock';
import { sqlFor } from '../database/sql';
import { findByIdempotencyKey } from '../ledger/idempotency';
import type { LedgerService } from '../ledger/ledger.service';
import type { PostingResult, TransactionRecord } from '../ledger/ledger.types';
import type { Logger } from '../logging/logger';
import { balanceShownToMerchant, canPay, paymentGuard } from '../prepaid/payment-guard';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import {
  AuthorizationSettlementService,
  type ExpiryRun,
  type SettlementFailure,
} from './authorization-settlement.service';
import { findAuthorization, heldAmountOf } from './authorization.queries';
import type { MerchantService } from './merchant.service';
import { fingerprint } from './payment.service';

export interface AuthorizationDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  merchants: MerchantService;
  clock: Clock;
  logger: Logger;
  maxTransactionAmount: number;
  holdMinutes: number;
}

export interface AuthorizeRequest {
  prepaidId: string;
  amount: number;
  idempotencyKey: string;
  orderReference: string;
  description?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface CaptureRequest {
  /** Database id of the authorization. */
  authorizationId: string;
  /** Omitted: capture the whole held amount. */
  amount?: number | null;
  idempotencyKey?: string | null;
}

export interface VoidRequest {
  /** Database id of the authorization. */
  authorizationId: string;
  idempotencyKey?: string | null;
}

export type AuthorizeOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean }
  | { ok: false; code: 'INVALID_PREPAID_ID' }
  | { ok: false; code: 'AMOUNT_LIMIT_EXCEEDED'; maximum: number }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

export type CaptureOutcome =
  | {
      ok: true;
      transaction: TransactionRecord;
      released: number;
      replayed: boolean;
      balanceAfter: number;
    }
  | { ok: false; code: 'CAPTURE_EXCEEDS_AUTHORIZATION'; held: number }
  | { ok: false; code: 'INVALID_PREPAID_ID' }
  | SettlementFailure;

export type VoidOutcome =
  { ok: true; transaction: TransactionRecord; replayed: boolean } | SettlementFailure;

const DEFAULT_EXPIRY_BATCH_SIZE = 100;

/**
 * Two-step payments: authorize (hold), capture, void, and expiry of holds.
 *
 * An authorization is a pending posting that holds its amount on the prepaid
 * ID's account. It is settled exactly once, by a capture, a void or an
 * expiry, each a posting whose parent is the authorization. All of them post
 * between the same two accounts, so the ledger's account locks serialise them
 * and a guard sees every earlier settlement. The unique index
 * ledger_transaction_settled_once rejects a second settlement even if a guard
 * missed one.
 */
export class AuthorizationService {
  private readonly settlements: AuthorizationSettlementService;

  constructor(private readonly deps: AuthorizationDependencies) {
    this.settlements = new AuthorizationSettlementService(deps);
  }

  /** Holds an amount on a prepaid ID for the merchant until `holdMinutes` from now. */
  async authorize(
    em: EntityManager,
    merchantId: string,
    request: AuthorizeRequest,
  ): Promise<AuthorizeOutcome> {
    const { ledger, prepaidIds, merchants, clock, maxTransactionAmount } = this.deps;
    const sql = sqlFor(em);
    const scope = merchantScope(merchantId);
    const prepaid = await prepaidIds.resolve(sql, request.prepaidId);
    // An unknown ID still gets a fingerprint, so that reusing a key with a
    // mistyped ID is reported as a reused key rather than as a replay.
    const idHash = prepaid?.lookupHash.toString('hex') ?? `invalid:${request.prepaidId}`;
    const requestFingerprint = fingerprint([
      'authorize',
      idHash,
      request.amount,
      request.orderReference,
      request.description ?? null,
      request.metadata ?? null,
    ]);

    // A retry returns the first result even if the ID was blocked or the hold settled since.
    const earlier = await findByIdempotencyKey(sql, scope, request.idempotencyKey);
    if (earlier) {
      if (!earlier.fingerprint.equals(requestFingerprint)) {
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      }
      return { ok: true, transaction: earlier.transaction, replayed: true };
    }

    if (request.amount > maxTransactionAmount) {
      return { ok: false, code: 'AMOUNT_LIMIT_EXCEEDED', maximum: maxTransactionAmount };
    }
    if (!prepaid || !canPay(prepaid, request.amount, clock.now())) {
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    }

    const result = await ledger.post(em, {
      kind: 'authorization',
      status: 'pending',
      debitAccountId: prepaid.ledgerAccountId,
      creditAccountId: await merchants.settlementAccountId(sql, merchantId),
      amount: request.amount,
      expiresAt: new Date(clock.now() + this.deps.holdMinutes * 60_000),
      merchantId,
      prepaidIdId: prepaid.id,
      orderReference: request.orderReference,
      description: request.description ?? null,
      metadata: request.metadata ?? null,
      idempotency: { scope, key: request.idempotencyKey, fingerprint: requestFingerprint },
      // Spends a one-time ID in the same database transaction as the hold.
      guard: paymentGuard(prepaidIds, prepaid, request.amount, clock),
    });
    return toAuthorizeOutcome(result);
  }

  /**
   * Moves the captured amount (by default all of it) from the prepaid ID to
   * the merchant and releases the whole hold in the same posting.
   */
  async capture(
    em: EntityManager,
    merchantId: string,
    request: CaptureRequest,
  ): Promise<CaptureOutcome> {
    const sql = sqlFor(em);
    const idempotency = request.idempotencyKey
      ? {
          scope: merchantScope(merchantId),
          key: request.idempotencyKey,
          fingerprint: fingerprint(['capture', request.authorizationId, request.amount ?? null]),
        }
      : undefined;
    if (idempotency) {
      const earlier = await findByIdempotencyKey(sql, idempotency.scope, idempotency.key);
      if (earlier) {
        if (!earlier.fingerprint.equals(idempotency.fingerprint)) {
          return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
        }
        const held = await heldAmountOf(sql, earlier.transaction.parentId!);
        const released = held - earlier.transaction.amount;
        const balanceAfter = await balanceShownToMerchant(sql, earlier.transaction);
        return {
          ok: true,
          transaction: earlier.transaction,
          released,
          replayed: true,
          balanceAfter,
        };
      }
    }

    const authorization = await findAuthorization(sql, merchantId, request.authorizationId);
    if (!authorization) return { ok: false, code: 'AUTHORIZATION_NOT_FOUND' };
    const unsettleable = await this.settlements.rejectUnlessPending(em, authorization);
    if (unsettleable) return unsettleable;
    const amount = request.amount ?? authorization.amount;
    if (amount > authorization.amount) {
      return { ok: false, code: 'CAPTURE_EXCEEDS_AUTHORIZATION', held: authorization.amount };
    }

    const outcome = await this.settlements.settle(em, authorization, {
      kind: 'capture',
      status: 'posted',
      amount,
      releaseHeld: authorization.amount,
      idempotency,
    });
    if (!outcome.ok) return outcome;
    return {
      ...outcome,
      released: authorization.amount - outcome.transaction.amount,
      balanceAfter: await balanceShownToMerchant(sqlFor(em), outcome.transaction),
    };
  }

  /** Releases the whole hold of an authorization without moving any points. */
  async voidAuthorization(
    em: EntityManager,
    merchantId: string,
    request: VoidRequest,
  ): Promise<VoidOutcome> {
    const sql = sqlFor(em);
    const idempotency = request.idempotencyKey
      ? {
          scope: merchantScope(merchantId),
          key: request.idempotencyKey,
          fingerprint: fingerprint(['void', request.authorizationId]),
        }
      : undefined;
    if (idempotency) {
      const earlier = await findByIdempotencyKey(sql, idempotency.scope, idempotency.key);
      if (earlier) {
        if (!earlier.fingerprint.equals(idempotency.fingerprint)) {
          return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
        }
        return { ok: true, transaction: earlier.transaction, replayed: true };
      }
    }

    const authorization = await findAuthorization(sql, merchantId, request.authorizationId);
    if (!authorization) return { ok: false, code: 'AUTHORIZATION_NOT_FOUND' };
    const unsettleable = await this.settlements.rejectUnlessPending(em, authorization);
    if (unsettleable) return unsettleable;

    const outcome = await this.settlements.settle(em, authorization, {
      kind: 'void',
      status: 'voided',
      amount: authorization.amount,
      idempotency,
    });
    // Only a capture checks the paying ID; a void always may release a hold.
    if (!outcome.ok && outcome.code === 'INVALID_PREPAID_ID')
      throw new Error('a void was rejected as a payment');
    return outcome;
  }

  /**
   * Releases the holds of up to `limit` authorizations whose `expires_at` is
   * at or before `now` and that nothing settled, oldest first. Several
   * instances may run this at once. An authorization that another run or a
   * capture settled first is counted in `alreadySettled`. An unexpected error
   * on one authorization is logged once per call and does not stop the others.
   */
  expireDue(
    em: EntityManager,
    now: Date = new Date(this.deps.clock.now()),
    limit = DEFAULT_EXPIRY_BATCH_SIZE,
  ): Promise<ExpiryRun> {
    return this.settlements.expireDue(em, now, limit);
  }
}

function merchantScope(merchantId: string): string {
  return `merchant:${merchantId}`;
}

function toAuthorizeOutcome(result: PostingResult): AuthorizeOutcome {
  if (result.ok) return result;
  switch (result.code) {
    case 'INSUFFICIENT_BALANCE':
      return { ok: false, code: result.code, available: result.available };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ok: false, code: result.code };
    case 'REJECTED':
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    default:
      throw new Error(`unexpected authorization failure ${result.code}`);
  }
}
