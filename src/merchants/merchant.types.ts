import { Field, ID, ObjectType } from 'type-graphql';
import { PointsScalar } from '../graphql/points.scalar';
import { ConnectionType } from '../graphql/relay';
import { TransactionView } from '../transactions/transaction.type';

export const TransactionConnection = ConnectionType(TransactionView, 'Transaction');

@ObjectType('Merchant', { description: 'The merchant that owns the calling API key.' })
export class MerchantView {
  @Field(() => ID)
  id!: string;

  @Field()
  name!: string;

  @Field(() => PointsScalar, {
    description: 'Balance of the settlement account: charges less refunds and credits paid out.',
  })
  settlementBalance!: number;

  @Field(() => PointsScalar, {
    description: 'How far below zero credits may take the settlement balance.',
  })
  creditLimit!: number;

  /** Internal: the settlement account, for field resolvers. */
  settlementAccountId!: string;
}

@ObjectType({ description: 'A transaction of the subscribed merchant, sent after it committed.' })
export class MerchantTransactionEvent {
  @Field(() => TransactionView)
  transaction!: TransactionView;

  @Field(() => PointsScalar, { description: 'Settlement balance right after this transaction.' })
  settlementBalance!: number;
}
