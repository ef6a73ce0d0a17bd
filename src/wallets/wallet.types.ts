import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { PointsScalar } from '../graphql/points.scalar';
import { ConnectionType, Node } from '../graphql/relay';
import { TransactionView } from '../transactions/transaction.type';

export enum WalletStatusValue {
  ACTIVE = 'active',
  FROZEN = 'frozen',
  WITHDRAWN = 'withdrawn',
}
registerEnumType(WalletStatusValue, { name: 'WalletStatus' });

export const WALLET_TYPE_NAME = 'Wallet';

@ObjectType(WALLET_TYPE_NAME, { implements: Node })
export class WalletView extends Node {
  @Field(() => WalletStatusValue)
  status!: WalletStatusValue;

  @Field({
    description:
      'The dedicated prepaid ID, masked: **** **** **** 1234. revealPrepaidId shows it whole.',
  })
  prepaidId!: string;

  @Field({
    description: 'False until the e-mail address is verified, and while the ID is blocked.',
  })
  canPay!: boolean;

  @Field(() => PointsScalar)
  balancePosted!: number;

  @Field(() => PointsScalar, { description: 'Held by pending authorizations.' })
  balanceHeld!: number;

  @Field(() => PointsScalar, { description: 'Posted less held: what can be spent now.' })
  balanceAvailable!: number;

  /** Internal: the wallet's ledger account, for field resolvers. */
  ledgerAccountId!: string;

  /** Internal: the time of the last rotation, for prepaidIdRotatableAt. */
  prepaidIdRotatedAt!: Date | null;
}

export const WalletHistoryConnection = ConnectionType(TransactionView, 'WalletHistory');

@ObjectType({ description: "A committed change of the signed-in member's wallet balance." })
export class BalanceChangedEvent {
  @Field(() => PointsScalar)
  balancePosted!: number;

  @Field(() => PointsScalar)
  balanceHeld!: number;

  @Field(() => PointsScalar)
  balanceAvailable!: number;

  @Field(() => TransactionView)
  transaction!: TransactionView;
}
