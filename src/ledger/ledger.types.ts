import type { Sql } from '../database/sql';
import type { TransactionKind, TransactionStatus } from './ledger-transaction.entity';
import type { LedgerAccountKind } from './ledger-account.entity';

/** A ledger account as read under its lock. */
export interface LockedAccount {
  id: string;
  kind: LedgerAccountKind;
  merchantId: string | null;
  balancePosted: number;
  balanceHeld: number;
}

/** A ledger transaction as the ledger returns it; amounts in points. */
export interface TransactionRecord {
  id: string;
  kind: TransactionKind;
  status: TransactionStatus;
  debitAccountId: string;
  creditAccountId: string;
  amount: number;
  debitBalanceAfter: number;
  creditBalanceAfter: number;
  merchantId: string | null;
  prepaidIdId: string | null;
  parentId: string | null;
  expiresAt: Date | null;
  actorMemberId: string | null;
  orderReference: string | null;
  description: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: Date;
}

export interface Idempotency {
  /** Whose keys these are, such as `merchant:<id>`: keys of different scopes never collide. */
  scope: string;
  key: string;
  /** SHA-256 of the request's meaningful fields; a replay must match it. */
  fingerprint: Buffer;
}

/**
 * A business rule that must hold at the moment the money moves, checked with
 * the debit account locked. The credit account is locked too, except a shared
 * account credited by a stored-value one, whose lock comes with the write:
 * its balances here may be out of date. Return a failure to abort with
 * nothing written. It may also write rows of its own (mark a one-time ID
 * spent), in the same database transaction.
 */
export type PostingGuard = (
  sql: Sql,
  accounts: { debit: LockedAccount; credit: LockedAccount },
) => Promise<PostingFailure | undefined>;

export interface PostingRequest {
  kind: TransactionKind;
  /**
   * `posted` (the default) moves the amount; `pending` only holds it on the
   * debit account; `voided` and `expired` release a hold of that amount.
   */
  status?: TransactionStatus;
  /** Part of the debit account's hold released by this posting, as when a capture settles an authorization. */
  releaseHeld?: number;
  debitAccountId: string;
  creditAccountId: string;
  amount: number;
  merchantId?: string | null;
  prepaidIdId?: string | null;
  parentId?: string | null;
  /** When a pending authorization's hold lapses; required for status `pending`, absent otherwise. */
  expiresAt?: Date | null;
  /** The member or operator who caused the movement, if one did. */
  actorMemberId?: string | null;
  orderReference?: string | null;
  description?: string | null;
  metadata?: Record<string, unknown> | null;
  idempotency?: Idempotency;
  guard?: PostingGuard;
}

/** Expected reasons for a posting not to happen; nothing was written when one is returned. */
export type PostingFailure =
  | { code: 'INSUFFICIENT_BALANCE'; available: number }
  | { code: 'IDEMPOTENCY_KEY_REUSED' }
  | { code: 'REFUND_EXCEEDS_CHARGE'; refundable: number }
  | { code: 'CREDIT_LIMIT_EXCEEDED'; available: number }
  | { code: 'WALLET_BALANCE_LIMIT_EXCEEDED'; maximum: number; balance: number }
  | { code: 'REJECTED'; reason: string };

export type PostingResult =
  | { ok: true; transaction: TransactionRecord; replayed: boolean }
  | ({ ok: false } & PostingFailure);
