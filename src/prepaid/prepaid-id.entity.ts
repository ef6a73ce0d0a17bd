import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';

export const PREPAID_ID_KINDS = ['wallet', 'card', 'one_time'] as const;
export type PrepaidIdKind = (typeof PREPAID_ID_KINDS)[number];

/** `pending`: a wallet's ID before its owner verified the e-mail address. */
export const PREPAID_ID_STATUSES = [
  'pending',
  'active',
  'blocked',
  'retired',
  'spent',
  'cancelled',
] as const;
export type PrepaidIdStatus = (typeof PREPAID_ID_STATUSES)[number];

/**
 * A 16-digit prepaid ID, which is a bearer credential. The plain digits are
 * never stored: `lookupHash` is an HMAC-SHA256 under a server key, used to
 * find the row, and `encryptedValue` is an AES-256-GCM copy for display to the
 * owner.
 */
@Entity({ tableName: 'prepaid_id' })
export class PrepaidId {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: 'text' })
  kind!: PrepaidIdKind;

  @Property({ type: 'bytea', unique: true })
  lookupHash!: Buffer;

  @Property({ type: 'bytea', lazy: true })
  encryptedValue!: Buffer;

  /** The last four digits, for the masked form `**** **** **** 1234`. */
  @Property({ type: 'character(4)', length: 4 })
  lastDigits!: string;

  /** The ledger account that a charge through this ID debits. */
  @Property({ type: 'bigint' })
  @Index({ name: 'prepaid_id_ledger_account_id_index' })
  ledgerAccountId!: string;

  @Property({ type: 'text', default: 'active' })
  status: PrepaidIdStatus = 'active';

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', nullable: true })
  statusChangedAt?: Date | null;
}
