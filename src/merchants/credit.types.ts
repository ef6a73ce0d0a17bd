import { createUnionType, Field, InputType, ObjectType } from 'type-graphql';
import { UserError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';
import { TransactionView } from '../transactions/transaction.type';
import {
  AmountLimitExceededError,
  IdempotencyKeyReusedError,
  InvalidPrepaidIdError,
} from './payment.types';

@InputType()
export class CreditPointsInput {
  @Field({
    description: "The wallet's 16-digit prepaid ID; cards and one-time IDs cannot receive credits.",
  })
  prepaidId!: string;

  @Field(() => PointsScalar, { description: 'A positive amount.' })
  amount!: number;

  @Field()
  idempotencyKey!: string;

  @Field(() => String, { nullable: true })
  orderReference?: string | null;

  @Field(() => String, { nullable: true })
  description?: string | null;
}

@ObjectType()
export class CreditSuccess {
  @Field(() => TransactionView)
  transaction!: TransactionView;

  @Field(() => PointsScalar, { description: 'Settlement balance right after this credit.' })
  settlementBalanceAfter!: number;

  @Field()
  replayed!: boolean;
}

@ObjectType({
  implements: UserError,
  description: 'The settlement balance and credit limit do not cover the credit.',
})
export class CreditLimitExceededError extends UserError {
  @Field(() => PointsScalar, { description: 'The most that can be credited now.' })
  available!: number;
}

@ObjectType({
  implements: UserError,
  description:
    "The wallet would hold more than the maximum balance. The wallet's balance is not disclosed.",
})
export class WalletBalanceLimitExceededError extends UserError {
  @Field(() => PointsScalar)
  maximum!: number;
}

export const CreditPointsResult = createUnionType({
  name: 'CreditPointsResult',
  types: () =>
    [
      CreditSuccess,
      InvalidPrepaidIdError,
      CreditLimitExceededError,
      WalletBalanceLimitExceededError,
      AmountLimitExceededError,
      IdempotencyKeyReusedError,
    ] as const,
});
