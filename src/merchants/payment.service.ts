import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlFor, type Sql } from '../database/sql';
import { findByIdempotencyKey } from '../ledger/idempotency';
import type { LedgerService } from '../ledger/ledger.service';
import type { PostingResult, TransactionRecord } from '../ledger/ledger.types';
import {
  readTransaction,
  TRANSACTION_COLUMNS,
  type TransactionRow,
} from '../ledger/transaction-row';
import type { Clock } from '../config/clock';
import { balanceShownToMerchant, canPay, paymentGuard } from '../prepaid/payment-guard';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { MerchantService } from './merchant.service';

export interface ChargeRequest {
  prepaidId: string;
  amount: number;
  idempotencyKey: string;
  orderReference: string;
  description?: string | null;
  metadata?: Record<string, unknown> | null;
}

export interface RefundRequest {
  transactionId: string;
  /** Omitted: refund everything not refunded yet. */
  amount?: number | null;
  idempotencyKey: string;
  description?: string | null;
}

type ChargeFailure = Exclude<ChargeOutcome, { ok: true }>;

export type ChargeOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean; balanceAfter: number }
  | { ok: false; code: 'INVALID_PREPAID_ID' }
  | { ok: false; code: 'AMOUNT_LIMIT_EXCEEDED'; maximum: number }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

export type RefundOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean; refundable: number }
  | { ok: false; code: 'TRANSACTION_NOT_FOUND' }
  | { ok: false; code: 'AMOUNT_LIMIT_EXCEEDED'; maximum: number }
  | { ok: false; code: 'REFUND_EXCEEDS_CHARGE'; refundable: number }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

export interface BalanceInquiry {
  valid: boolean;
  balance: number | null;
}

const REFUNDABLE_KINDS = ['charge', 'capture'];

/** Computes a stable SHA-256 of a request, so that a replay can be distinguished from a different request. */
export function fingerprint(parts: unknown[]): Buffer {
  return createHash('sha256').update(JSON.stringify(parts, sortedKeys)).digest();
}

/** JSON.stringify replacer that orders object keys, so that equal objects hash equally. */
function sortedKeys(_key: string, value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  entries.sort(([a], [b]) => compareStrings(a, b));
  return Object.fromEntries(entries);
}

function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Merchants' money movements: charges, refunds and balance inquiries on prepaid IDs. */
export class PaymentService {
  constructor(
    private readonly ledger: LedgerService,
    private readonly prepaidIds: PrepaidIdService,
    private readonly merchants: MerchantService,
    private readonly maxTransactionAmount: number,
    private readonly clock: Clock,
  ) {}

  /** Charges a prepaid ID; `balanceAfter` is the payer's balance as the merchant may see it. */
  async charge(
    em: EntityManager,
    merchantId: string,
    request: ChargeRequest,
  ): Promise<ChargeOutcome> {
    const sql = sqlFor(em);
    const scope = `merchant:${merchantId}`;
    const prepaid = await this.prepaidIds.resolve(sql, request.prepaidId);
    // An unknown ID still gets a fingerprint, so that reusing a key with a
    // mistyped ID is reported as a reused key rather than as a replay.
    const idHash = prepaid?.lookupHash.toString('hex') ?? `invalid:${request.prepaidId}`;
    const requestFingerprint = fingerprint([
      'charge',
      idHash,
      request.amount,
      request.orderReference,
      request.description ?? null,
      request.metadata ?? null,
    ]);

    const rejection: ChargeFailure | undefined =
      request.amount > this.maxTransactionAmount
        ? { ok: false, code: 'AMOUNT_LIMIT_EXCEEDED', maximum: this.maxTransactionAmount }
        : !prepaid || !canPay(prepaid, request.amount, this.clock.now())
          ? { ok: false, code: 'INVALID_PREPAID_ID' }
          : undefined;
    if (rejection || !prepaid) {
      // A retry returns the first result even if the ID was blocked or spent
      // since. A retry that passes these checks is found by the ledger instead.
      const earlier = await findByIdempotencyKey(sql, scope, request.idempotencyKey);
      if (!earlier) return rejection ?? { ok: false, code: 'INVALID_PREPAID_ID' };
      if (!earlier.fingerprint.equals(requestFingerprint))
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      return {
        ok: true,
        transaction: earlier.transaction,
        replayed: true,
        balanceAfter: await balanceShownToMerchant(sql, earlier.transaction),
      };
    }

    const result = await this.ledger.post(em, {
      kind: 'charge',
      debitAccountId: prepaid.ledgerAccountId,
      creditAccountId: await this.merchants.settlementAccountId(sql, merchantId),
      amount: request.amount,
      merchantId,
      prepaidIdId: prepaid.id,
      orderReference: request.orderReference,
      description: request.description ?? null,
      metadata: request.metadata ?? null,
      idempotency: { scope, key: request.idempotencyKey, fingerprint: requestFingerprint },
      guard: paymentGuard(this.prepaidIds, prepaid, request.amount, this.clock),
    });
    const outcome = toChargeOutcome(result);
    if (!outcome.ok) return outcome;
    // A one-time ID stands for a wallet whose balance its owner keeps private.
    const balanceAfter = prepaid.kind === 'one_time' ? 0 : outcome.transaction.debitBalanceAfter;
    return { ...outcome, balanceAfter };
  }

  async refund(
    em: EntityManager,
    merchantId: string,
    request: RefundRequest,
  ): Promise<RefundOutcome> {
    const sql = sqlFor(em);
    const scope = `merchant:${merchantId}`;
    const requestFingerprint = fingerprint([
      'refund',
      request.transactionId,
      request.amount ?? null,
      request.description ?? null,
    ]);

    const earlier = await findByIdempotencyKey(sql, scope, request.idempotencyKey);
    if (earlier) {
      if (!earlier.fingerprint.equals(requestFingerprint))
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      const refundable = await refundableAmount(sql, earlier.transaction.parentId!);
      return { ok: true, transaction: earlier.transaction, replayed: true, refundable };
    }

    // Another merchant's charge is reported as not found, which reveals
    // nothing about other merchants' transactions.
    const charge = await sql.one<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} FROM ledger_transaction
        WHERE id = ? AND merchant_id = ? AND kind IN (?, ?) AND status = 'posted'`,
      [request.transactionId, merchantId, ...REFUNDABLE_KINDS],
    );
    if (!charge) return { ok: false, code: 'TRANSACTION_NOT_FOUND' };
    const original = readTransaction(charge);

    const amount = request.amount ?? (await refundableAmount(sql, original.id));
    if (amount > this.maxTransactionAmount) {
      return { ok: false, code: 'AMOUNT_LIMIT_EXCEEDED', maximum: this.maxTransactionAmount };
    }
    if (amount <= 0) return { ok: false, code: 'REFUND_EXCEEDS_CHARGE', refundable: 0 };

    // Every refund of one charge debits the same merchant account, so the
    // ledger's account locks serialise concurrent refunds and the total read
    // in this guard cannot change before the posting commits. A refund to a
    // wallet closed since the charge is forfeited like the rest of its
    // balance: withdrawal forfeits everything, and nobody can spend there.
    const post = (creditAccountId: string, forfeited: boolean) =>
      this.ledger.post(em, {
        kind: 'refund',
        debitAccountId: original.creditAccountId,
        creditAccountId,
        amount,
        merchantId,
        prepaidIdId: original.prepaidIdId,
        parentId: original.id,
        orderReference: original.orderReference,
        description: forfeited
          ? 'refund to a closed wallet, forfeited'
          : (request.description ?? null),
        idempotency: { scope, key: request.idempotencyKey, fingerprint: requestFingerprint },
        guard: async (locked, accounts) => {
          const refundable = await refundableAmount(locked, original.id);
          if (amount > refundable) return { code: 'REFUND_EXCEEDS_CHARGE', refundable };
          if (!forfeited && (await isClosedWallet(locked, accounts.credit.id))) {
            return { code: 'REJECTED', reason: 'WALLET_WITHDRAWN' };
          }
          return undefined;
        },
      });
    let result = await post(original.debitAccountId, false);
    if (!result.ok && result.code === 'REJECTED' && result.reason === 'WALLET_WITHDRAWN') {
      const forfeiture = await this.ledger.operatorAccountId(sql, 'forfeiture');
      result = await post(forfeiture, true);
    }
    if (!result.ok) {
      if (result.code === 'REFUND_EXCEEDS_CHARGE')
        return { ok: false, code: result.code, refundable: result.refundable };
      if (result.code === 'IDEMPOTENCY_KEY_REUSED') return { ok: false, code: result.code };
      throw new Error(`unexpected refund failure ${result.code}`);
    }
    const refundable = await refundableAmount(sqlFor(em), original.id);
    return { ok: true, transaction: result.transaction, replayed: result.replayed, refundable };
  }

  /**
   * Reports whether a prepaid ID can pay and how much: the available balance,
   * or for a capped one-time ID the smaller of that and its cap. Every
   * invalid case (malformed, unknown, retired, blocked, expired, spent) gets
   * the same answer.
   */
  async inquire(em: EntityManager, prepaidId: string): Promise<BalanceInquiry> {
    const sql = sqlFor(em);
    const prepaid = await this.prepaidIds.resolve(sql, prepaidId);
    if (!prepaid || !canPay(prepaid, 1, this.clock.now())) return { valid: false, balance: null };
    const row = await sql.one<{ available: string }>(
      'SELECT balance_posted - balance_held AS available FROM ledger_account WHERE id = ?',
      [prepaid.ledgerAccountId],
    );
    const available = Number(row!.available);
    const balance = prepaid.amountCap === null ? available : Math.min(available, prepaid.amountCap);
    return { valid: true, balance };
  }
}

async function isClosedWallet(sql: Sql, ledgerAccountId: string): Promise<boolean> {
  const row = await sql.one<{ status: string }>(
    'SELECT status FROM wallet WHERE ledger_account_id = ?',
    [ledgerAccountId],
  );
  return row?.status === 'withdrawn';
}

async function refundableAmount(sql: Sql, chargeId: string): Promise<number> {
  const row = await sql.one<{ refundable: string }>(
    `SELECT c.amount - COALESCE(SUM(r.amount), 0) AS refundable
       FROM ledger_transaction c
       LEFT JOIN ledger_transaction r ON r.parent_id = c.id AND r.kind = 'refund'
      WHERE c.id = ?
      GROUP BY c.amount`,
    [chargeId],
  );
  return Number(row?.refundable ?? 0);
}

function toChargeOutcome(
  result: PostingResult,
): ChargeFailure | { ok: true; transaction: TransactionRecord; replayed: boolean } {
  if (result.ok) return result;
  switch (result.code) {
    case 'INSUFFICIENT_BALANCE':
      return { ok: false, code: result.code, available: result.available };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ok: false, code: result.code };
    case 'REJECTED':
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    default:
      throw new Error(`unexpected charge failure ${result.code}`);
  }
}
