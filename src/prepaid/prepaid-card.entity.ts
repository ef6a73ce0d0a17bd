import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';
import { PointsType } from '../database/points.type';

/** A batch of prepaid cards issued together by an operator, all of one face value. */
@Entity({ tableName: 'prepaid_card_batch' })
export class PrepaidCardBatch {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: PointsType })
  faceValue!: number;

  @Property({ type: 'integer' })
  cardCount!: number;

  @Property({ type: 'text', default: '' })
  note: string = '';

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();
}

/** A prepaid card: its own ledger account, funded from the issuance account, and its prepaid ID. */
@Entity({ tableName: 'prepaid_card' })
export class PrepaidCard {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: 'uuid' })
  @Index({ name: 'prepaid_card_batch_id_index' })
  batchId!: string;

  @Property({ type: 'bigint', unique: true })
  ledgerAccountId!: string;

  @Property({ type: 'uuid', unique: true })
  prepaidIdId!: string;

  @Property({ type: PointsType })
  faceValue!: number;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();
}
