import { createUnionType, Field, ID, InputType, ObjectType } from 'type-graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { UserError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';
import { TransactionKind, TransactionView } from '../transactions/transaction.type';
import {
  AmountLimitExceededError,
  IdempotencyKeyReusedError,
  InsufficientBalanceError,
  InvalidPrepaidIdError,
} from './payment.types';

@InputType()
export class AuthorizeInput {
  @Field({ description: 'The 16-digit prepaid ID. Spaces and hyphens are ignored.' })
  prepaidId!: string;

  @Field(() => PointsScalar, { description: 'A positive amount to hold.' })
  amount!: number;

  @Field({
    description:
      'Unique per request of this merchant; a retry with the same key and input holds nothing again.',
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
export class CaptureInput {
  @Field(() => ID, { description: 'The authorization to capture.' })
  authorizationId!: string;

  @Field(() => PointsScalar, {
    nullable: true,
    description: 'Omit to capture the whole held amount. The rest of the hold is released.',
  })
  amount?: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'Optional. A retry with the same key and input returns the first capture.',
  })
  idempotencyKey?: string | null;
}

@InputType()
export class VoidInput {
  @Field(() => ID, { description: 'The authorization whose hold to release.' })
  authorizationId!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Optional. A retry with the same key and input returns the first void.',
  })
  idempotencyKey?: string | null;
}

@ObjectType()
export class AuthorizationSuccess {
  @Field(() => TransactionView, {
    description: 'The pending authorization. Pass its id to capture or voidAuthorization.',
  })
  authorization!: TransactionView;

  @Field({ description: 'When the hold lapses unless it is captured or voided first.' })
  expiresAt!: Date;

  @Field({
    description: 'True when this is the stored result of an earlier request with the same key.',
  })
  replayed!: boolean;
}

@ObjectType()
export class CaptureSuccess {
  @Field(() => TransactionView, { description: 'The capture, which moved the captured amount.' })
  transaction!: TransactionView;

  @Field(() => PointsScalar, {
    description: 'Posted balance of the prepaid ID right after this capture; 0 for a one-time ID.',
  })
  balanceAfter!: number;

  @Field(() => PointsScalar, {
    description: 'The part of the hold that was released without being captured.',
  })
  released!: number;

  @Field({
    description: 'True when this is the stored result of an earlier request with the same key.',
  })
  replayed!: boolean;
}

@ObjectType()
export class VoidSuccess {
  @Field(() => TransactionView, {
    description: 'The void, whose amount is the released hold.',
  })
  transaction!: TransactionView;

  @Field({
    description: 'True when this is the stored result of an earlier request with the same key.',
  })
  replayed!: boolean;
}

@ObjectType({ implements: UserError })
export class AuthorizationNotFoundError extends UserError {}

@ObjectType({ implements: UserError })
export class AuthorizationNotPendingError extends UserError {
  @Field(() => TransactionKind, {
    description: 'The kind of the earlier settlement, CAPTURE or VOID.',
  })
  settledBy!: TransactionKind;
}

@ObjectType({ implements: UserError })
export class AuthorizationExpiredError extends UserError {
  @Field({ description: 'The time at which the hold lapsed.' })
  expiredAt!: Date;
}

@ObjectType({ implements: UserError })
export class CaptureExceedsAuthorizationError extends UserError {
  @Field(() => PointsScalar, {
    description: 'The held amount, which is the most a capture can take.',
  })
  held!: number;
}

export const AuthorizeResult = createUnionType({
  name: 'AuthorizeResult',
  types: () =>
    [
      AuthorizationSuccess,
      InsufficientBalanceError,
      InvalidPrepaidIdError,
      IdempotencyKeyReusedError,
      AmountLimitExceededError,
    ] as const,
});

export const CaptureResult = createUnionType({
  name: 'CaptureResult',
  types: () =>
    [
      CaptureSuccess,
      AuthorizationNotFoundError,
      AuthorizationNotPendingError,
      AuthorizationExpiredError,
      CaptureExceedsAuthorizationError,
      IdempotencyKeyReusedError,
      InvalidPrepaidIdError,
    ] as const,
});

export const VoidAuthorizationResult = createUnionType({
  name: 'VoidAuthorizationResult',
  types: () =>
    [
      VoidSuccess,
      AuthorizationNotFoundError,
      AuthorizationNotPendingError,
      AuthorizationExpiredError,
      IdempotencyKeyReusedError,
    ] as const,
});
