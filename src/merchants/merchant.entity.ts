import { Entity, PrimaryKey, Property } from '@mikro-orm/core';
import { PointsType } from '../database/points.type';

@Entity({ tableName: 'merchant' })
export class Merchant {
  @PrimaryKey({ type: 'uuid', defaultRaw: 'gen_random_uuid()' })
  id!: string;

  @Property({ type: 'text' })
  name!: string;

  /** How far below zero credits may take the settlement account, in points. */
  @Property({ type: PointsType, default: 0 })
  creditLimit: number = 0;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();
}
