import { createUnionType, Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { GraphQLSafeInt } from 'graphql-scalars';
import { UserError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';
import { InvalidTwoFactorCodeError } from '../members/member-errors.types';
import { IdempotencyKeyReusedError, InsufficientBalanceError } from '../merchants/payment.types';
import { Direction, TransactionView } from '../transactions/transaction.type';
import { WalletStatusValue } from '../wallets/wallet.types';

export enum PrepaidIdKindValue {
  WALLET = 'wallet',
  CARD = 'card',
  ONE_TIME = 'one_time',
}
registerEnumType(PrepaidIdKindValue, { name: 'PrepaidIdKind' });

export enum PrepaidIdStatusValue {
  PENDING = 'pending',
  ACTIVE = 'active',
  BLOCKED = 'blocked',
  RETIRED = 'retired',
  SPENT = 'spent',
  CANCELLED = 'cancelled',
}
registerEnumType(PrepaidIdStatusValue, {
  name: 'PrepaidIdStatus',
  description:
    'PENDING: a wallet ID before the e-mail address is verified. Only ACTIVE IDs can pay.',
});

@InputType({ description: 'A prepaid ID to block or unblock, and why.' })
export class PrepaidIdStatusChangeInput {
  @Field({ description: 'The 16-digit prepaid ID of any kind. Spaces and hyphens are ignored.' })
  prepaidId!: string;

  @Field({ description: 'Why the operator makes the change, stored in the audit log.' })
  reason!: string;
}

@InputType({ description: 'A wallet to freeze or unfreeze, found by its owner, and why.' })
export class WalletStatusChangeInput {
  @Field({ description: "The username of the wallet's owner, compared without case." })
  username!: string;

  @Field({ description: 'Why the operator makes the change, stored in the audit log.' })
  reason!: string;
}

@InputType()
export class AdjustBalanceInput {
  @Field({ description: 'The 16-digit wallet or card prepaid ID whose balance changes.' })
  prepaidId!: string;

  @Field(() => PointsScalar, { description: 'A positive amount.' })
  amount!: number;

  @Field(() => Direction, {
    description: 'CREDIT adds the amount to the prepaid ID; DEBIT takes it away.',
  })
  direction!: Direction;

  @Field({
    description: 'Why the operator adjusts, stored as the description of the ledger transaction.',
  })
  reason!: string;

  @Field({ description: "A current code of the operator's authenticator app." })
  twoFactorCode!: string;

  @Field(() => String, {
    nullable: true,
    description:
      'Unique per adjustment of this operator; a retry with the same key and input moves no money again.',
  })
  idempotencyKey?: string | null;
}

@InputType()
export class SetMerchantCreditLimitInput {
  @Field(() => ID, {
    description: 'The global ID of the merchant, as `merchant { id }` returns it.',
  })
  merchantId!: string;

  @Field(() => PointsScalar, {
    description: 'How far credits may take the settlement balance below zero: 0 or more.',
  })
  creditLimit!: number;

  @Field({ description: "A current code of the operator's authenticator app." })
  twoFactorCode!: string;
}

@ObjectType({ implements: UserError, description: 'No prepaid ID, wallet or merchant matches.' })
export class NotFoundError extends UserError {}

@ObjectType({
  implements: UserError,
  description:
    'The prepaid ID exists, but its kind or status does not allow the operation. The code is INVALID_PREPAID_ID.',
})
export class PrepaidIdStatusError extends UserError {
  @Field(() => PrepaidIdKindValue)
  kind!: PrepaidIdKindValue;

  @Field(() => PrepaidIdStatusValue)
  status!: PrepaidIdStatusValue;
}

@ObjectType()
export class PrepaidIdStatusSuccess {
  @Field({ description: 'The prepaid ID, masked: **** **** **** 1234.' })
  prepaidId!: string;

  @Field(() => PrepaidIdKindValue)
  kind!: PrepaidIdKindValue;

  @Field(() => PrepaidIdStatusValue, { description: 'The status after the request.' })
  status!: PrepaidIdStatusValue;

  @Field({
    description: 'False when the ID had this status already, in which case nothing was written.',
  })
  changed!: boolean;
}

@ObjectType()
export class WalletStatusSuccess {
  @Field(() => ID)
  walletId!: string;

  @Field()
  username!: string;

  @Field(() => WalletStatusValue, { description: 'The status after the request.' })
  status!: WalletStatusValue;

  @Field({
    description:
      'False when the wallet had this status already, in which case nothing was written.',
  })
  changed!: boolean;
}

@ObjectType()
export class AdjustBalanceSuccess {
  @Field(() => TransactionView, { description: 'The adjustment, seen from the prepaid ID.' })
  transaction!: TransactionView;

  @Field(() => PointsScalar, {
    description: 'Posted balance of the prepaid ID right after the adjustment.',
  })
  balanceAfter!: number;

  @Field({
    description: 'True when this is the stored result of an earlier request with the same key.',
  })
  replayed!: boolean;
}

@ObjectType()
export class SetMerchantCreditLimitSuccess {
  @Field(() => ID)
  merchantId!: string;

  @Field(() => PointsScalar)
  previousCreditLimit!: number;

  @Field(() => PointsScalar)
  creditLimit!: number;

  @Field({
    description: 'False when the limit had this value already, in which case nothing was written.',
  })
  changed!: boolean;
}

export const PrepaidIdStatusResult = createUnionType({
  name: 'PrepaidIdStatusResult',
  types: () => [PrepaidIdStatusSuccess, NotFoundError, PrepaidIdStatusError] as const,
});

export const WalletStatusResult = createUnionType({
  name: 'WalletStatusResult',
  types: () => [WalletStatusSuccess, NotFoundError] as const,
});

export const AdjustBalanceResult = createUnionType({
  name: 'AdjustBalanceResult',
  types: () =>
    [
      AdjustBalanceSuccess,
      NotFoundError,
      PrepaidIdStatusError,
      InsufficientBalanceError,
      InvalidTwoFactorCodeError,
      IdempotencyKeyReusedError,
    ] as const,
});

export const SetMerchantCreditLimitResult = createUnionType({
  name: 'SetMerchantCreditLimitResult',
  types: () => [SetMerchantCreditLimitSuccess, NotFoundError, InvalidTwoFactorCodeError] as const,
});

@ObjectType({ description: 'A ledger account whose balances differ from its transactions.' })
export class LedgerAccountMismatch {
  @Field(() => ID)
  ledgerAccountId!: string;

  @Field({ description: 'wallet, card, merchant_settlement, issuance, forfeiture or adjustment.' })
  kind!: string;

  @Field(() => PointsScalar)
  balancePosted!: number;

  @Field(() => PointsScalar, { description: 'Posted credits less posted debits.' })
  expectedPosted!: number;

  @Field(() => PointsScalar)
  balanceHeld!: number;

  @Field(() => PointsScalar, { description: 'Authorizations not yet captured, voided or expired.' })
  expectedHeld!: number;
}

@ObjectType({ description: "The result of checking the ledger's invariants." })
export class LedgerCheckReport {
  @Field({
    description:
      "True when the posted balances sum to zero and mismatches is empty, so every account's posted balance equals its posted transactions and every held balance equals its unsettled authorizations.",
  })
  balanced!: boolean;

  @Field(() => PointsScalar, {
    description: "Sum of every account's posted balance, which is 0 when balanced.",
  })
  totalPosted!: number;

  @Field(() => GraphQLSafeInt)
  accountCount!: number;

  @Field(() => GraphQLSafeInt)
  transactionCount!: number;

  @Field(() => [LedgerAccountMismatch])
  mismatches!: LedgerAccountMismatch[];

  @Field()
  checkedAt!: Date;
}

@ObjectType({
  description:
    'Points not yet used in wallets and prepaid cards at one moment, as an issuer reports them for a base date.',
})
export class UnusedBalanceReport {
  @Field()
  asOf!: Date;

  @Field(() => PointsScalar, { description: 'Sum of the posted balances of all wallets.' })
  walletTotal!: number;

  @Field(() => PointsScalar, { description: 'Sum of the posted balances of all prepaid cards.' })
  cardTotal!: number;

  @Field(() => PointsScalar)
  total!: number;

  @Field(() => GraphQLSafeInt, { description: 'Wallets and cards with a balance above zero.' })
  accountCount!: number;
}
