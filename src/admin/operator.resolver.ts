import { Arg, Ctx, GraphQLISODateTime, Mutation, Query, Resolver } from 'type-graphql';
import { requireOperator, type RequestContext } from '../graphql/context';
import { badUserInput, ErrorCode, userError } from '../graphql/errors';
import { fromGlobalId, toGlobalId } from '../graphql/relay';
import { memberError } from '../members/member-errors.types';
import { IdempotencyKeyReusedError, InsufficientBalanceError } from '../merchants/payment.types';
import { maskPrepaidId } from '../prepaid/prepaid-id';
import type { PrepaidIdKind, PrepaidIdStatus } from '../prepaid/prepaid-id.entity';
import { Direction, toTransactionView } from '../transactions/transaction.type';
import { WALLET_TYPE_NAME, WalletStatusValue } from '../wallets/wallet.types';
import type { OperatorActor } from './operator-actor';
import type { AdjustmentOutcome } from './operator-adjustment';
import { OperatorInputError } from './operator-input';
import type { PrepaidIdStatusOutcome, WalletStatusOutcome } from './operator-status-change';
import {
  AdjustBalanceInput,
  AdjustBalanceResult,
  AdjustBalanceSuccess,
  LedgerAccountMismatch,
  LedgerCheckReport,
  NotFoundError,
  PrepaidIdKindValue,
  PrepaidIdStatusChangeInput,
  PrepaidIdStatusError,
  PrepaidIdStatusResult,
  PrepaidIdStatusSuccess,
  PrepaidIdStatusValue,
  SetMerchantCreditLimitInput,
  SetMerchantCreditLimitResult,
  SetMerchantCreditLimitSuccess,
  UnusedBalanceReport,
  WalletStatusChangeInput,
  WalletStatusResult,
  WalletStatusSuccess,
} from './operator.types';

const MERCHANT_TYPE_NAME = 'Merchant';

/**
 * Operations for operators: members with the operator role and two-factor
 * authentication on. Every change is audited with the operator as actor.
 */
@Resolver()
export class OperatorResolver {
  @Mutation(() => PrepaidIdStatusResult, {
    description: 'Blocks an active prepaid ID of any kind, so that it can no longer pay.',
  })
  async blockPrepaidId(
    @Arg('input') input: PrepaidIdStatusChangeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof PrepaidIdStatusResult> {
    const actor = operatorActor(context);
    const outcome = await withInputChecks(() =>
      context.services.operators.blockPrepaidId(context.em, actor, input),
    );
    return prepaidIdStatusResult(outcome, 'blocked');
  }

  @Mutation(() => PrepaidIdStatusResult, {
    description: 'Makes a blocked prepaid ID active again. IDs in other statuses stay unchanged.',
  })
  async unblockPrepaidId(
    @Arg('input') input: PrepaidIdStatusChangeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof PrepaidIdStatusResult> {
    const actor = operatorActor(context);
    const outcome = await withInputChecks(() =>
      context.services.operators.unblockPrepaidId(context.em, actor, input),
    );
    return prepaidIdStatusResult(outcome, 'unblocked');
  }

  @Mutation(() => WalletStatusResult, {
    description:
      "Freezes a member's wallet: its prepaid ID and one-time IDs cannot pay, and it cannot receive points.",
  })
  async freezeWallet(
    @Arg('input') input: WalletStatusChangeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof WalletStatusResult> {
    const actor = operatorActor(context);
    const outcome = await withInputChecks(() =>
      context.services.operators.freezeWallet(context.em, actor, input),
    );
    return walletStatusResult(outcome);
  }

  @Mutation(() => WalletStatusResult, { description: 'Makes a frozen wallet active again.' })
  async unfreezeWallet(
    @Arg('input') input: WalletStatusChangeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof WalletStatusResult> {
    const actor = operatorActor(context);
    const outcome = await withInputChecks(() =>
      context.services.operators.unfreezeWallet(context.em, actor, input),
    );
    return walletStatusResult(outcome);
  }

  @Mutation(() => AdjustBalanceResult, {
    description:
      'Credits or debits a wallet or card with an audited adjustment; needs a fresh two-factor code.',
  })
  async adjustBalance(
    @Arg('input') input: AdjustBalanceInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof AdjustBalanceResult> {
    const actor = operatorActor(context);
    const outcome = await withInputChecks(() =>
      context.services.operators.adjustBalance(context.em, actor, {
        ...input,
        direction: input.direction === Direction.CREDIT ? 'credit' : 'debit',
      }),
    );
    return adjustBalanceResult(outcome);
  }

  @Mutation(() => SetMerchantCreditLimitResult, {
    description:
      "Sets how far credits may take a merchant's settlement balance below zero; needs a fresh two-factor code.",
  })
  async setMerchantCreditLimit(
    @Arg('input') input: SetMerchantCreditLimitInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof SetMerchantCreditLimitResult> {
    const actor = operatorActor(context);
    // A global ID of another type, or one that does not decode, gets NOT_FOUND like an unknown merchant.
    const merchantId = fromGlobalId(MERCHANT_TYPE_NAME, input.merchantId) ?? '';
    const outcome = await withInputChecks(() =>
      context.services.operators.setMerchantCreditLimit(context.em, actor, {
        merchantId,
        creditLimit: input.creditLimit,
        twoFactorCode: input.twoFactorCode,
      }),
    );
    if (outcome.ok) {
      return Object.assign(new SetMerchantCreditLimitSuccess(), {
        merchantId: toGlobalId(MERCHANT_TYPE_NAME, outcome.merchantId),
        previousCreditLimit: outcome.previousCreditLimit,
        creditLimit: outcome.creditLimit,
        changed: outcome.changed,
      });
    }
    if (outcome.code === 'NOT_FOUND') return notFound('No merchant has this ID');
    return memberError(ErrorCode.INVALID_TWO_FACTOR_CODE) as typeof SetMerchantCreditLimitResult;
  }

  @Query(() => LedgerCheckReport, {
    description:
      "Checks that the posted balances sum to zero, that every account's posted balance equals its posted transactions, and that every held balance equals its authorizations that no capture, void or expiry has settled.",
  })
  async ledgerCheck(@Ctx() context: RequestContext): Promise<LedgerCheckReport> {
    requireOperator(context);
    const report = await context.services.ledgerCheck.check(context.em);
    return Object.assign(new LedgerCheckReport(), {
      ...report,
      mismatches: report.mismatches.map((mismatch) =>
        Object.assign(new LedgerAccountMismatch(), {
          ledgerAccountId: mismatch.accountId,
          kind: mismatch.kind,
          balancePosted: mismatch.balancePosted,
          expectedPosted: mismatch.expectedPosted,
          balanceHeld: mismatch.balanceHeld,
          expectedHeld: mismatch.expectedHeld,
        }),
      ),
    });
  }

  @Query(() => UnusedBalanceReport, {
    description:
      'The points not yet used in wallets and prepaid cards at a moment, from the ledger: for the base-date reports of the Payment Services Act (31 March and 30 September).',
  })
  async unusedBalanceReport(
    @Arg('asOf', () => GraphQLISODateTime, {
      description:
        'The moment, with its offset, such as 2027-03-31T23:59:59.999+09:00. A moment still to come returns the balances so far.',
    })
    asOf: Date,
    @Ctx() context: RequestContext,
  ): Promise<UnusedBalanceReport> {
    requireOperator(context);
    const report = await context.services.operators.unusedBalanceReport(context.em, asOf);
    return Object.assign(new UnusedBalanceReport(), report);
  }
}

function operatorActor(context: RequestContext): OperatorActor {
  const caller = requireOperator(context);
  return { via: 'api', memberId: caller.memberId, ip: context.ip };
}

/** Runs a service call and turns its input errors into BAD_USER_INPUT. */
async function withInputChecks<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof OperatorInputError) throw badUserInput(error.message, error.field);
    throw error;
  }
}

function notFound(message: string): NotFoundError {
  return userError(NotFoundError, ErrorCode.NOT_FOUND, message);
}

function prepaidIdStatusError(
  kind: PrepaidIdKind,
  status: PrepaidIdStatus,
  message: string,
): PrepaidIdStatusError {
  return userError(PrepaidIdStatusError, ErrorCode.INVALID_PREPAID_ID, message, {
    kind: kind as PrepaidIdKindValue,
    status: status as PrepaidIdStatusValue,
  });
}

function prepaidIdStatusResult(
  outcome: PrepaidIdStatusOutcome,
  verb: 'blocked' | 'unblocked',
): typeof PrepaidIdStatusResult {
  if (outcome.ok) {
    return Object.assign(new PrepaidIdStatusSuccess(), {
      prepaidId: maskPrepaidId(outcome.prepaidId.lastDigits),
      kind: outcome.prepaidId.kind as PrepaidIdKindValue,
      status: outcome.prepaidId.status as PrepaidIdStatusValue,
      changed: outcome.changed,
    });
  }
  if (outcome.code === 'NOT_FOUND') return notFound('No prepaid ID has these digits');
  const required = verb === 'blocked' ? 'an active' : 'a blocked';
  return prepaidIdStatusError(
    outcome.kind,
    outcome.status,
    `The prepaid ID is ${outcome.status}; only ${required} ID can be ${verb}`,
  );
}

function walletStatusResult(outcome: WalletStatusOutcome): typeof WalletStatusResult {
  if (!outcome.ok) return notFound('No active member with a wallet has this username');
  return Object.assign(new WalletStatusSuccess(), {
    walletId: toGlobalId(WALLET_TYPE_NAME, outcome.wallet.id),
    username: outcome.wallet.username,
    status: outcome.wallet.status as WalletStatusValue,
    changed: outcome.changed,
  });
}

function adjustBalanceResult(outcome: AdjustmentOutcome): typeof AdjustBalanceResult {
  if (outcome.ok) {
    const view = toTransactionView(outcome.transaction, outcome.ledgerAccountId);
    return Object.assign(new AdjustBalanceSuccess(), {
      transaction: view,
      balanceAfter: view.balanceAfter,
      replayed: outcome.replayed,
    });
  }
  switch (outcome.code) {
    case 'NOT_FOUND':
      return notFound('No prepaid ID has these digits');
    case 'INVALID_PREPAID_ID':
      return prepaidIdStatusError(
        outcome.kind,
        outcome.status,
        outcome.kind === 'one_time'
          ? "A one-time ID cannot be adjusted; adjust the wallet's own prepaid ID"
          : `The prepaid ID is ${outcome.status}; its balance can no longer be adjusted`,
      );
    case 'INSUFFICIENT_BALANCE':
      return userError(
        InsufficientBalanceError,
        ErrorCode.INSUFFICIENT_BALANCE,
        'The prepaid ID has too few points for this debit',
        { available: outcome.available },
      );
    case 'IDEMPOTENCY_KEY_REUSED':
      return userError(
        IdempotencyKeyReusedError,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        'This idempotency key was used for a different adjustment; use a new key',
      );
    case 'INVALID_TWO_FACTOR_CODE':
      return memberError(ErrorCode.INVALID_TWO_FACTOR_CODE) as typeof AdjustBalanceResult;
  }
}
