import { Entity, PrimaryKey, Property } from '@mikro-orm/core';
import { PointsType } from '../database/points.type';

export const LEDGER_ACCOUNT_KINDS = [
  'wallet',
  'card',
  'merchant_settlement',
  'issuance',
  'forfeiture',
  'adjustment',
] as const;
export type LedgerAccountKind = (typeof LEDGER_ACCOUNT_KINDS)[number];

/** Kinds that hold members' stored value and may never go below zero. */
export const STORED_VALUE_KINDS: readonly LedgerAccountKind[] = ['wallet', 'card'];

/**
 * An account of the double-entry ledger. Balances are materialised here and
 * written only by LedgerService, in the database transaction that inserts the
 * ledger transaction. A credit raises balancePosted and a debit lowers it, so
 * the sum over all accounts is always zero.
 */
@Entity({ tableName: 'ledger_account' })
export class LedgerAccount {
  @PrimaryKey({ type: 'bigint' })
  id!: string;

  @Property({ type: 'text' })
  kind!: LedgerAccountKind;

  @Property({ type: 'uuid', nullable: true })
  merchantId?: string | null;

  @Property({ type: PointsType, default: 0 })
  balancePosted: number = 0;

  /** Sum of pending authorizations on this account. */
  @Property({ type: PointsType, default: 0 })
  balanceHeld: number = 0;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();
}
