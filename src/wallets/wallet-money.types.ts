import {
  createUnionType,
  Field,
  ID,
  InputType,
  Int,
  ObjectType,
  registerEnumType,
} from 'type-graphql';
import { ErrorCode, UserError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';
import {
  InvalidTwoFactorCodeError,
  TwoFactorCodeRequiredError,
} from '../members/member-errors.types';
import { WalletBalanceLimitExceededError } from '../merchants/credit.types';
import {
  IdempotencyKeyReusedError,
  InsufficientBalanceError,
  InvalidPrepaidIdError,
} from '../merchants/payment.types';
import { Node } from '../graphql/relay';
import { TransactionView } from '../transactions/transaction.type';

export const ONE_TIME_TYPE_NAME = 'OneTimePrepaidId';

export enum OneTimeStatus {
  ACTIVE = 'active',
  SPENT = 'spent',
  CANCELLED = 'cancelled',
  EXPIRED = 'expired',
  RETIRED = 'retired',
  BLOCKED = 'blocked',
}
registerEnumType(OneTimeStatus, { name: 'OneTimePrepaidIdStatus' });

@ObjectType(ONE_TIME_TYPE_NAME, {
  implements: Node,
  description: 'A single-use prepaid ID that pays from the wallet.',
})
export class OneTimePrepaidIdView extends Node {
  @Field({ description: 'Masked: **** **** **** 1234.' })
  prepaidId!: string;

  @Field(() => OneTimeStatus)
  status!: OneTimeStatus;

  @Field(() => PointsScalar, {
    nullable: true,
    description: 'The largest amount it may pay; null for no cap.',
  })
  amountCap!: number | null;

  @Field()
  expiresAt!: Date;

  @Field()
  createdAt!: Date;
}

@InputType()
export class CreateOneTimePrepaidIdInput {
  @Field(() => PointsScalar, {
    nullable: true,
    description: 'The largest amount it may pay; omit for no cap.',
  })
  amountCap?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Minutes until it expires; the server sets a default and a maximum.',
  })
  expiresInMinutes?: number | null;
}

@ObjectType()
export class OneTimePrepaidIdCreated {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'The full 16 digits, shown only now.' })
  prepaidId!: string;

  @Field(() => PointsScalar, { nullable: true })
  amountCap!: number | null;

  @Field()
  expiresAt!: Date;
}

@ObjectType()
export class OneTimePrepaidIdCancelled {
  @Field(() => ID, { description: 'The cancelled one-time prepaid ID; charges with it now fail.' })
  id!: string;
}

@ObjectType()
export class PrepaidIdRotated {
  @Field({ description: 'The new full 16 digits; the old ID is rejected from now on.' })
  prepaidId!: string;

  @Field({ description: 'The earliest time of the next rotation.' })
  rotatableAt!: Date;
}

@ObjectType({
  implements: UserError,
  description: 'The prepaid ID was rotated less than 24 hours ago.',
})
export class RotationTooSoonError extends UserError {
  @Field({ description: 'The earliest time of the next rotation, in UTC.' })
  rotatableAt!: Date;
}

@ObjectType({
  implements: UserError,
  description:
    'The wallet cannot pay or receive: the address is unverified, or the wallet is frozen or closed.',
})
export class WalletUnavailableError extends UserError {}

@ObjectType({
  implements: UserError,
  description:
    "No active one-time prepaid ID of yours has this ID. It is unknown or another member's, or it was cancelled, spent or expired already.",
})
export class OneTimeIdNotFoundError extends UserError {}

@ObjectType({
  implements: UserError,
  description:
    'Points never move from one member to another; only a prepaid card can be the source.',
})
export class TransferNotAllowedError extends UserError {}

@ObjectType({ implements: UserError, description: 'The card has no points left; buy a new card.' })
export class CardEmptyError extends UserError {}

@InputType()
export class TransferInput {
  @Field({ description: 'The prepaid card to move points from.' })
  sourcePrepaidId!: string;

  @Field(() => PointsScalar, {
    nullable: true,
    description: "Omit to move the card's whole balance.",
  })
  amount?: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'Makes a retry safe: the same key moves points once.',
  })
  idempotencyKey?: string | null;
}

@ObjectType()
export class TransferSuccess {
  @Field(() => TransactionView)
  transaction!: TransactionView;

  @Field()
  replayed!: boolean;
}

export const RotatePrepaidIdResult = createUnionType({
  name: 'RotatePrepaidIdResult',
  types: () =>
    [
      PrepaidIdRotated,
      RotationTooSoonError,
      TwoFactorCodeRequiredError,
      InvalidTwoFactorCodeError,
      WalletUnavailableError,
    ] as const,
});

export const CreateOneTimePrepaidIdResult = createUnionType({
  name: 'CreateOneTimePrepaidIdResult',
  types: () => [OneTimePrepaidIdCreated, WalletUnavailableError] as const,
});

export const CancelOneTimePrepaidIdResult = createUnionType({
  name: 'CancelOneTimePrepaidIdResult',
  types: () => [OneTimePrepaidIdCancelled, OneTimeIdNotFoundError] as const,
});

export const TransferResult = createUnionType({
  name: 'TransferResult',
  types: () =>
    [
      TransferSuccess,
      TransferNotAllowedError,
      CardEmptyError,
      InvalidPrepaidIdError,
      InsufficientBalanceError,
      WalletUnavailableError,
      WalletBalanceLimitExceededError,
      IdempotencyKeyReusedError,
    ] as const,
});

export const WALLET_MONEY_MESSAGES = {
  [ErrorCode.WALLET_UNAVAILABLE]:
    'The wallet cannot pay or receive now: verify the address, or contact support',
  [ErrorCode.TRANSFER_NOT_ALLOWED]:
    'Only a prepaid card can be moved into a wallet; points cannot move between members',
  [ErrorCode.CARD_EMPTY]: 'The card has no points left; buy a new card',
  [ErrorCode.ONE_TIME_ID_NOT_FOUND]: 'No active one-time prepaid ID of yours has this ID',
} as const;
