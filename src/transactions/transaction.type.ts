import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import type { TransactionRecord } from '../ledger/ledger.types';
import { PointsScalar } from '../graphql/points.scalar';
import { Node, toGlobalId } from '../graphql/relay';

export enum TransactionKind {
  CARD_ISSUE = 'card_issue',
  CHARGE = 'charge',
  REFUND = 'refund',
  CREDIT = 'credit',
  TOP_UP = 'top_up',
  FORFEITURE = 'forfeiture',
  ADJUSTMENT = 'adjustment',
  AUTHORIZATION = 'authorization',
  CAPTURE = 'capture',
  VOID = 'void',
  EXPIRY = 'expiry',
}
registerEnumType(TransactionKind, { name: 'TransactionKind' });

export enum TransactionStatus {
  POSTED = 'posted',
  PENDING = 'pending',
  VOIDED = 'voided',
  EXPIRED = 'expired',
}
registerEnumType(TransactionStatus, {
  name: 'TransactionStatus',
  description: 'POSTED moved the amount; PENDING holds it; VOIDED and EXPIRED released a hold.',
});

export enum Direction {
  DEBIT = 'debit',
  CREDIT = 'credit',
}
registerEnumType(Direction, {
  name: 'Direction',
  description: "Whether the viewer's account paid (DEBIT) or received (CREDIT) the amount.",
});

export const TRANSACTION_TYPE_NAME = 'Transaction';

/** A ledger transaction seen from one of its two accounts, the viewer's. */
@ObjectType(TRANSACTION_TYPE_NAME, { implements: Node })
export class TransactionView extends Node {
  @Field(() => TransactionKind)
  kind!: TransactionKind;

  @Field(() => TransactionStatus)
  status!: TransactionStatus;

  @Field(() => PointsScalar)
  amount!: number;

  @Field(() => Direction)
  direction!: Direction;

  @Field(() => PointsScalar, {
    description: "The viewer's posted balance right after this transaction.",
  })
  balanceAfter!: number;

  @Field(() => String, { nullable: true })
  orderReference!: string | null;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true })
  metadata!: Record<string, unknown> | null;

  @Field(() => ID, {
    nullable: true,
    description:
      'The charge that a refund returns, or the authorization that a capture or void settles.',
  })
  parentTransactionId!: string | null;

  @Field()
  createdAt!: Date;

  /** Internal fields for field resolvers; not part of the schema. */
  record!: TransactionRecord;
}

export function transactionGlobalId(id: string): string {
  return toGlobalId(TRANSACTION_TYPE_NAME, id);
}

/** Shows a transaction from the side of `viewerAccountId`. */
export function toTransactionView(
  record: TransactionRecord,
  viewerAccountId: string,
): TransactionView {
  const view = new TransactionView();
  const isDebit = record.debitAccountId === viewerAccountId;
  view.id = transactionGlobalId(record.id);
  view.kind = record.kind as TransactionKind;
  view.status = record.status as TransactionStatus;
  view.amount = record.amount;
  view.direction = isDebit ? Direction.DEBIT : Direction.CREDIT;
  view.balanceAfter = isDebit ? record.debitBalanceAfter : record.creditBalanceAfter;
  view.orderReference = record.orderReference;
  view.description = record.description;
  view.metadata = record.metadata;
  view.parentTransactionId = record.parentId ? transactionGlobalId(record.parentId) : null;
  view.createdAt = record.createdAt;
  view.record = record;
  return view;
}
