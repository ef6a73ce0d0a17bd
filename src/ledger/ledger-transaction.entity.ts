import { Entity, PrimaryKey, Property } from '@mikro-orm/core';
import { PointsType } from '../database/points.type';

export const TRANSACTION_KINDS = [
  'card_issue',
  'charge',
  'refund',
  'credit',
  'top_up',
  'forfeiture',
  'adjustment',
  'authorization',
  'capture',
  'void',
  'expiry',
] as const;
export type TransactionKind = (typeof TRANSACTION_KINDS)[number];

export const TRANSACTION_STATUSES = ['posted', 'pending', 'voided', 'expired'] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/**
 * One movement of points: the debit account loses `amount` and the credit
 * account gains it. Rows are immutable; a database trigger rejects UPDATE and
 * DELETE.
 */
@Entity({ tableName: 'ledger_transaction' })
export class LedgerTransaction {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: 'text' })
  kind!: TransactionKind;

  @Property({ type: 'text' })
  status!: TransactionStatus;

  @Property({ type: 'bigint' })
  debitAccountId!: string;

  @Property({ type: 'bigint' })
  creditAccountId!: string;

  @Property({ type: PointsType })
  amount!: number;

  @Property({ type: PointsType })
  debitBalanceAfter!: number;

  @Property({ type: PointsType })
  creditBalanceAfter!: number;

  @Property({ type: 'uuid', nullable: true })
  merchantId?: string | null;

  /** The prepaid ID that was presented, when the movement started from one. */
  @Property({ type: 'uuid', nullable: true })
  prepaidIdId?: string | null;

  /** The charge that a refund returns, or the authorization that a capture or void settles. */
  @Property({ type: 'uuid', nullable: true })
  parentId?: string | null;

  @Property({ type: 'text', nullable: true })
  idempotencyScope?: string | null;

  @Property({ type: 'text', nullable: true })
  idempotencyKey?: string | null;

  @Property({ type: 'bytea', nullable: true, lazy: true })
  requestFingerprint?: Buffer | null;

  @Property({ type: 'text', nullable: true })
  orderReference?: string | null;

  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Property({ type: 'json', nullable: true })
  metadata?: Record<string, unknown> | null;

  @Property({ type: 'timestamptz', defaultRaw: 'clock_timestamp()' })
  createdAt!: Date;
}
