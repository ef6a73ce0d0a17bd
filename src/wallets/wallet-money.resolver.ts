import { Arg, Ctx, FieldResolver, Mutation, Resolver, Root } from 'type-graphql';
import { requireMember, type RequestContext } from '../graphql/context';
import { badUserInput, ErrorCode, userError } from '../graphql/errors';
import { fromGlobalId, isUuid, toGlobalId } from '../graphql/relay';
import { memberError } from '../members/member-errors.types';
import { WalletBalanceLimitExceededError } from '../merchants/credit.types';
import {
  InsufficientBalanceError,
  invalidPrepaidIdError,
  idempotencyKeyReusedError,
} from '../merchants/payment.types';
import { checkIdempotencyKey, checkPositiveAmount } from '../merchants/payment.validation';
import { maskPrepaidId } from '../prepaid/prepaid-id';
import { toTransactionView } from '../transactions/transaction.type';
import {
  CancelOneTimePrepaidIdResult,
  CardEmptyError,
  CreateOneTimePrepaidIdInput,
  CreateOneTimePrepaidIdResult,
  OneTimeIdNotFoundError,
  OneTimePrepaidIdCancelled,
  OneTimePrepaidIdCreated,
  OneTimePrepaidIdView,
  OneTimeStatus,
  ONE_TIME_TYPE_NAME,
  PrepaidIdRotated,
  RotatePrepaidIdResult,
  RotationTooSoonError,
  TransferInput,
  TransferNotAllowedError,
  TransferResult,
  TransferSuccess,
  WalletUnavailableError,
  WALLET_MONEY_MESSAGES,
} from './wallet-money.types';
import { WalletView } from './wallet.types';

function walletUnavailable(): WalletUnavailableError {
  return userError(
    WalletUnavailableError,
    ErrorCode.WALLET_UNAVAILABLE,
    WALLET_MONEY_MESSAGES.WALLET_UNAVAILABLE,
  );
}

@Resolver(() => WalletView)
export class WalletMoneyResolver {
  @FieldResolver(() => Date, {
    nullable: true,
    description: 'When the prepaid ID may next be rotated; null when it may be rotated now.',
  })
  async prepaidIdRotatableAt(
    @Root() wallet: WalletView,
    @Ctx() context: RequestContext,
  ): Promise<Date | null> {
    return context.services.prepaidIdLifecycle.rotatableAt(wallet.prepaidIdRotatedAt);
  }

  @FieldResolver(() => [OneTimePrepaidIdView], {
    description: 'One-time prepaid IDs, newest first.',
  })
  async oneTimePrepaidIds(
    @Root() wallet: WalletView,
    @Ctx() context: RequestContext,
    @Arg('includeInactive', { defaultValue: false }) includeInactive: boolean,
  ): Promise<OneTimePrepaidIdView[]> {
    const caller = requireMember(context);
    const views = await context.services.prepaidIdLifecycle.listOneTime(
      context.em,
      caller.memberId,
      includeInactive,
    );
    return views.map((view) =>
      Object.assign(new OneTimePrepaidIdView(), {
        id: toGlobalId(ONE_TIME_TYPE_NAME, view.id),
        prepaidId: maskPrepaidId(view.lastDigits),
        status: view.status as OneTimeStatus,
        amountCap: view.amountCap,
        expiresAt: view.expiresAt,
        createdAt: view.createdAt,
      }),
    );
  }

  @Mutation(() => RotatePrepaidIdResult, {
    nullable: true,
    description:
      "Replaces the wallet's prepaid ID with a new random one, at most once per 24 hours; needs a fresh code when two-factor authentication is on.",
  })
  async rotatePrepaidId(
    @Ctx() context: RequestContext,
    @Arg('twoFactorCode', () => String, { nullable: true }) twoFactorCode?: string | null,
  ): Promise<typeof RotatePrepaidIdResult> {
    const caller = requireMember(context);
    const outcome = await context.services.prepaidIdLifecycle.rotate(
      context.em,
      caller.memberId,
      twoFactorCode ?? null,
      context.ip,
    );
    if (outcome.ok) {
      return Object.assign(new PrepaidIdRotated(), {
        prepaidId: outcome.prepaidId,
        rotatableAt: outcome.rotatableAt,
      });
    }
    switch (outcome.code) {
      case 'ROTATION_TOO_SOON':
        return userError(
          RotationTooSoonError,
          ErrorCode.ROTATION_TOO_SOON,
          `The prepaid ID can be rotated again at ${outcome.rotatableAt.toISOString()}`,
          { rotatableAt: outcome.rotatableAt },
        );
      case 'WALLET_UNAVAILABLE':
        return walletUnavailable();
      default:
        return memberError(ErrorCode[outcome.code]);
    }
  }

  @Mutation(() => CreateOneTimePrepaidIdResult, {
    nullable: true,
    description:
      'Creates a one-time prepaid ID that pays from the wallet once, with an optional cap, before it expires.',
  })
  async createOneTimePrepaidId(
    @Arg('input') input: CreateOneTimePrepaidIdInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof CreateOneTimePrepaidIdResult> {
    const caller = requireMember(context);
    if (input.amountCap !== null && input.amountCap !== undefined)
      checkPositiveAmount(input.amountCap, 'amountCap');
    const maximum = context.services.config.oneTimeIdMaxMinutes;
    const minutes = input.expiresInMinutes;
    if (minutes !== null && minutes !== undefined && (minutes < 1 || minutes > maximum)) {
      throw badUserInput(`expiresInMinutes must be between 1 and ${maximum}`, 'expiresInMinutes');
    }
    const outcome = await context.services.prepaidIdLifecycle.createOneTime(
      context.em,
      caller.memberId,
      { amountCap: input.amountCap ?? null, expiresInMinutes: minutes ?? null },
      context.ip,
    );
    if (!outcome.ok) return walletUnavailable();
    return Object.assign(new OneTimePrepaidIdCreated(), {
      id: toGlobalId(ONE_TIME_TYPE_NAME, outcome.id),
      prepaidId: outcome.prepaidId,
      amountCap: outcome.amountCap,
      expiresAt: outcome.expiresAt,
    });
  }

  @Mutation(() => CancelOneTimePrepaidIdResult, {
    nullable: true,
    description: 'Cancels one of your active one-time prepaid IDs.',
  })
  async cancelOneTimePrepaidId(
    @Arg('id') id: string,
    @Ctx() context: RequestContext,
  ): Promise<typeof CancelOneTimePrepaidIdResult> {
    const caller = requireMember(context);
    const rowId = fromGlobalId(ONE_TIME_TYPE_NAME, id);
    const cancelled =
      rowId !== undefined &&
      isUuid(rowId) &&
      (await context.services.prepaidIdLifecycle.cancelOneTime(
        context.em,
        caller.memberId,
        rowId,
        context.ip,
      ));
    if (!cancelled) {
      return userError(
        OneTimeIdNotFoundError,
        ErrorCode.ONE_TIME_ID_NOT_FOUND,
        WALLET_MONEY_MESSAGES.ONE_TIME_ID_NOT_FOUND,
      );
    }
    return Object.assign(new OneTimePrepaidIdCancelled(), { id });
  }

  @Mutation(() => TransferResult, {
    nullable: true,
    description: "Moves a prepaid card's balance, or part of it, into your wallet.",
  })
  async transfer(
    @Arg('input') input: TransferInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof TransferResult> {
    const caller = requireMember(context);
    if (input.amount !== null && input.amount !== undefined) checkPositiveAmount(input.amount);
    if (input.idempotencyKey) checkIdempotencyKey(input.idempotencyKey);
    const outcome = await context.services.transfers.transfer(
      context.em,
      caller.memberId,
      input,
      context.ip,
    );
    if (outcome.ok) {
      return Object.assign(new TransferSuccess(), {
        transaction: toTransactionView(outcome.transaction, outcome.transaction.creditAccountId),
        replayed: outcome.replayed,
      });
    }
    switch (outcome.code) {
      case 'TRANSFER_NOT_ALLOWED':
        return userError(
          TransferNotAllowedError,
          ErrorCode.TRANSFER_NOT_ALLOWED,
          WALLET_MONEY_MESSAGES.TRANSFER_NOT_ALLOWED,
        );
      case 'CARD_EMPTY':
        return userError(CardEmptyError, ErrorCode.CARD_EMPTY, WALLET_MONEY_MESSAGES.CARD_EMPTY);
      case 'INVALID_PREPAID_ID':
        return invalidPrepaidIdError();
      case 'INSUFFICIENT_BALANCE':
        return userError(
          InsufficientBalanceError,
          ErrorCode.INSUFFICIENT_BALANCE,
          'The card has fewer points than requested',
          {
            available: outcome.available,
          },
        );
      case 'WALLET_UNAVAILABLE':
        return walletUnavailable();
      case 'WALLET_BALANCE_LIMIT_EXCEEDED':
        return userError(
          WalletBalanceLimitExceededError,
          ErrorCode.WALLET_BALANCE_LIMIT_EXCEEDED,
          `A wallet may hold at most ${outcome.maximum} points; it holds ${outcome.balance}`,
          { maximum: outcome.maximum },
        );
      case 'IDEMPOTENCY_KEY_REUSED':
        return idempotencyKeyReusedError();
    }
  }
}
