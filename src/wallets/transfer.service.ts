import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditService } from '../audit/audit.service';
import { sqlFor } from '../database/sql';
import type { LedgerService } from '../ledger/ledger.service';
import { findByIdempotencyKey } from '../ledger/idempotency';
import type { PostingRequest, TransactionRecord } from '../ledger/ledger.types';
import { fingerprint } from '../merchants/payment.service';
import type { Clock } from '../config/clock';
import { canPay } from '../prepaid/payment-guard';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { RateLimits } from '../rate-limit/rate-limits';
import { receivingWalletGuard } from './receiving-guard';
import type { WalletService } from './wallet.service';

export interface TransferRequest {
  sourcePrepaidId: string;
  /** Omitted: the card's whole available balance. */
  amount?: number | null;
  idempotencyKey?: string | null;
}

export type TransferOutcome =
  | { ok: true; transaction: TransactionRecord; replayed: boolean }
  | {
      ok: false;
      code: 'INVALID_PREPAID_ID' | 'TRANSFER_NOT_ALLOWED' | 'CARD_EMPTY' | 'WALLET_UNAVAILABLE';
    }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; available: number }
  | { ok: false; code: 'WALLET_BALANCE_LIMIT_EXCEEDED'; maximum: number; balance: number }
  | { ok: false; code: 'IDEMPOTENCY_KEY_REUSED' };

export interface TransferDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  wallets: WalletService;
  audit: AuditService;
  limits: RateLimits;
  clock: Clock;
  maxWalletBalance: number;
}

/**
 * `transfer`: a member moves a prepaid card's balance into the own wallet.
 * It is the only movement a member starts, and its source must be a card:
 * points never move from one member's wallet to another's, so a wallet ID or
 * a one-time ID as the source is rejected with TRANSFER_NOT_ALLOWED.
 */
export class TransferService {
  constructor(private readonly deps: TransferDependencies) {}

  async transfer(
    em: EntityManager,
    memberId: string,
    request: TransferRequest,
    ip: string,
  ): Promise<TransferOutcome> {
    // Every answer tells whether an ID is live, so transfers are limited like inquiries.
    await this.deps.limits.consume('transferPerMember', memberId);
    const sql = sqlFor(em);
    const wallet = await this.deps.wallets.findByMember(sql, memberId);
    if (!wallet) throw new Error(`member ${memberId} has no wallet`);
    const source = await this.deps.prepaidIds.resolve(sql, request.sourcePrepaidId);
    const idempotency = request.idempotencyKey
      ? {
          scope: `member:${memberId}`,
          key: request.idempotencyKey,
          // An unknown ID still gets a fingerprint, so that reusing a key with
          // a mistyped ID is reported as a reused key rather than as a replay.
          fingerprint: fingerprint([
            'transfer',
            source?.lookupHash.toString('hex') ?? `invalid:${request.sourcePrepaidId}`,
            request.amount ?? null,
          ]),
        }
      : undefined;

    // A retry returns the first result even if that transfer emptied the
    // card, or the card was blocked or the wallet frozen since, so the key
    // is looked up before the card and the wallet are checked.
    if (idempotency) {
      const earlier = await findByIdempotencyKey(sql, idempotency.scope, idempotency.key);
      if (earlier && !earlier.fingerprint.equals(idempotency.fingerprint))
        return { ok: false, code: 'IDEMPOTENCY_KEY_REUSED' };
      if (earlier) return { ok: true, transaction: earlier.transaction, replayed: true };
    }

    // A retired, blocked, expired or spent ID gets the same answer as an unknown one.
    if (!source || !canPay(source, 1, this.deps.clock.now()))
      return { ok: false, code: 'INVALID_PREPAID_ID' };
    if (source.kind !== 'card') return { ok: false, code: 'TRANSFER_NOT_ALLOWED' };
    if (wallet.status !== 'active' || wallet.prepaidIdStatus === 'pending') {
      return { ok: false, code: 'WALLET_UNAVAILABLE' };
    }

    const card = await sql.one<{ available: string }>(
      'SELECT balance_posted - balance_held AS available FROM ledger_account WHERE id = ?',
      [source.ledgerAccountId],
    );
    const available = Number(card!.available);
    if (available <= 0) return { ok: false, code: 'CARD_EMPTY' };
    const amount = request.amount ?? available;

    const posting: PostingRequest = {
      kind: 'top_up',
      debitAccountId: source.ledgerAccountId,
      creditAccountId: wallet.ledgerAccountId,
      amount,
      prepaidIdId: source.id,
      actorMemberId: memberId,
      description: 'transfer from a prepaid card',
      idempotency,
      guard: receivingWalletGuard(amount, this.deps.maxWalletBalance, async (locked) => {
        const current = await this.deps.prepaidIds.findById(locked, source.id);
        return current?.status === 'active'
          ? undefined
          : { code: 'REJECTED', reason: 'INVALID_PREPAID_ID' };
      }),
    };
    // The audit entry commits with the money, so that no top-up exists without it.
    const result = await this.deps.ledger.post(em, posting, (locked, transaction) =>
      this.deps.audit.record(locked, {
        action: 'top_up',
        actorMemberId: memberId,
        ip,
        details: { amount, transactionId: transaction.id, cardLastDigits: source.lastDigits },
      }),
    );
    if (!result.ok) {
      switch (result.code) {
        case 'INSUFFICIENT_BALANCE':
          return result.available <= 0
            ? { ok: false, code: 'CARD_EMPTY' }
            : { ok: false, code: 'INSUFFICIENT_BALANCE', available: result.available };
        case 'WALLET_BALANCE_LIMIT_EXCEEDED':
          return { ok: false, code: result.code, maximum: result.maximum, balance: result.balance };
        case 'IDEMPOTENCY_KEY_REUSED':
          return { ok: false, code: result.code };
        case 'REJECTED':
          return {
            ok: false,
            code:
              result.reason === 'WALLET_UNAVAILABLE' ? 'WALLET_UNAVAILABLE' : 'INVALID_PREPAID_ID',
          };
        default:
          throw new Error(`unexpected transfer failure ${result.code}`);
      }
    }
    return { ok: true, transaction: result.transaction, replayed: result.replayed };
  }
}
