import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/core';
import { Merchant } from './merchant.entity';

export const API_KEY_SCOPES = ['charge', 'refund', 'credit', 'inquiry', 'read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/**
 * A merchant's API key. Only the SHA-256 of the secret is stored; the prefix
 * finds the row without scanning, and is safe to show in lists and logs.
 */
@Entity({ tableName: 'merchant_api_key' })
export class MerchantApiKey {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @ManyToOne(() => Merchant, { fieldName: 'merchant_id' })
  @Index({ name: 'merchant_api_key_merchant_id_index' })
  merchant!: Merchant;

  @Property({ type: 'text', unique: true })
  prefix!: string;

  @Property({ type: 'bytea' })
  secretHash!: Buffer;

  @Property({ type: 'text', default: '' })
  label: string = '';

  @Property({ type: 'text[]' })
  scopes!: ApiKeyScope[];

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', nullable: true })
  revokedAt?: Date | null;
}
