import { createUnionType, Field, ID, InputType, ObjectType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { ErrorCode, UserError, userError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';
import { TransactionView } from '../transactions/transaction.type';

@InputType()
export class ChargeInput {
  @Field({ description: 'The 16-digit prepaid ID; spaces and hyphens are ignored.' })
  prepaidId!: string;

  @Field(() => PointsScalar, { description: 'A positive amount.' })
  amount!: number;

  @Field({
    description:
      'Unique per request of this merchant; a retry with the same key and input moves no money again.',
  })
  idempotencyKey!: string;

  @Field({ description: "The merchant's own reference for the order." })
  orderReference!: string;

  @Field(() => String, { nullable: true })
  description?: string | null;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description:
      'Up to 4 KB of JSON, returned with the same keys and values; Postgres may reorder the keys.',
  })
  metadata?: Record<string, unknown> | null;
}

@InputType()
export class RefundInput {
  @Field(() => ID, { description: 'The charge or capture to refund.' })
  transactionId!: string;

  @Field(() => PointsScalar, {
    nullable: true,
    description: 'Omit to refund everything not refunded yet.',
  })
  amount?: number | null;

  @Field()
  idempotencyKey!: string;

  @Field(() => String, { nullable: true })
  description?: string | null;
}

@ObjectType()
export class ChargeSuccess {
  @Field(() => TransactionView)
  transaction!: TransactionView;

  @Field(() => PointsScalar, {
    description:
      'Posted balance of the prepaid ID right after this charge; 0 for a one-time ID, which the charge spends.',
  })
  balanceAfter!: number;

  @Field({
    description: 'True when this is the stored result of an earlier request with the same key.',
  })
  replayed!: boolean;
}

@ObjectType()
export class RefundSuccess {
  @Field(() => TransactionView)
  transaction!: TransactionView;

  @Field(() => PointsScalar, { description: 'What can still be refunded of the original charge.' })
  refundableRemaining!: number;

  @Field()
  replayed!: boolean;
}

@ObjectType({ implements: UserError })
export class InsufficientBalanceError extends UserError {
  @Field(() => PointsScalar)
  available!: number;
}

@ObjectType({ implements: UserError })
export class InvalidPrepaidIdError extends UserError {}

@ObjectType({ implements: UserError })
export class IdempotencyKeyReusedError extends UserError {}

@ObjectType({ implements: UserError })
export class AmountLimitExceededError extends UserError {
  @Field(() => PointsScalar)
  maximum!: number;
}

@ObjectType({ implements: UserError })
export class RefundExceedsChargeError extends UserError {
  @Field(() => PointsScalar)
  refundable!: number;
}

@ObjectType({ implements: UserError })
export class TransactionNotFoundError extends UserError {}

export const ChargeResult = createUnionType({
  name: 'ChargeResult',
  types: () =>
    [
      ChargeSuccess,
      InsufficientBalanceError,
      InvalidPrepaidIdError,
      IdempotencyKeyReusedError,
      AmountLimitExceededError,
    ] as const,
});

export const RefundResult = createUnionType({
  name: 'RefundResult',
  types: () =>
    [
      RefundSuccess,
      RefundExceedsChargeError,
      TransactionNotFoundError,
      IdempotencyKeyReusedError,
      AmountLimitExceededError,
    ] as const,
});

@ObjectType()
export class PrepaidBalance {
  @Field({
    description: 'False for a malformed, unknown, blocked or retired ID, without saying which.',
  })
  valid!: boolean;

  @Field(() => PointsScalar, {
    nullable: true,
    description: 'Available balance; null when not valid.',
  })
  balance!: number | null;
}

// Builders of the errors that several payment operations return, so that
// every operation words them the same way.

export function invalidPrepaidIdError(): InvalidPrepaidIdError {
  return userError(
    InvalidPrepaidIdError,
    ErrorCode.INVALID_PREPAID_ID,
    'The prepaid ID is not valid for payment',
  );
}

export function idempotencyKeyReusedError(): IdempotencyKeyReusedError {
  return userError(
    IdempotencyKeyReusedError,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    'This idempotency key was used for a different request; use a new key',
  );
}

/** `operation` names the request in the message, such as "charge". */
export function amountLimitExceededError(
  operation: string,
  maximum: number,
): AmountLimitExceededError {
  return userError(
    AmountLimitExceededError,
    ErrorCode.AMOUNT_LIMIT_EXCEEDED,
    `A single ${operation} may be at most ${maximum} points`,
    { maximum },
  );
}
