import { Arg, Ctx, Mutation, Resolver } from 'type-graphql';
import { requireMerchant, type RequestContext } from '../graphql/context';
import { ErrorCode, userError } from '../graphql/errors';
import { toTransactionView } from '../transactions/transaction.type';
import type { CreditOutcome } from './credit.service';
import {
  CreditLimitExceededError,
  CreditPointsInput,
  CreditPointsResult,
  CreditSuccess,
  WalletBalanceLimitExceededError,
} from './credit.types';
import {
  invalidPrepaidIdError,
  idempotencyKeyReusedError,
  amountLimitExceededError,
} from './payment.types';
import {
  checkDescription,
  checkIdempotencyKey,
  checkOrderReference,
  checkPositiveAmount,
} from './payment.validation';

@Resolver()
export class CreditResolver {
  @Mutation(() => CreditPointsResult, {
    description: "Pays points into a member's wallet from the merchant's settlement account.",
  })
  async creditPoints(
    @Arg('input') input: CreditPointsInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof CreditPointsResult> {
    const merchant = requireMerchant(context, 'credit');
    checkPositiveAmount(input.amount);
    checkIdempotencyKey(input.idempotencyKey);
    if (input.orderReference !== undefined && input.orderReference !== null)
      checkOrderReference(input.orderReference);
    checkDescription(input.description);
    const outcome = await context.services.credits.credit(
      context.em,
      merchant.merchantId,
      input,
      `key:${merchant.apiKeyId}`,
    );
    return creditResult(outcome);
  }
}

export function creditResult(outcome: CreditOutcome): typeof CreditPointsResult {
  if (outcome.ok) {
    return Object.assign(new CreditSuccess(), {
      transaction: toTransactionView(outcome.transaction, outcome.transaction.debitAccountId),
      settlementBalanceAfter: outcome.transaction.debitBalanceAfter,
      replayed: outcome.replayed,
    });
  }
  switch (outcome.code) {
    case 'INVALID_PREPAID_ID':
      return invalidPrepaidIdError();
    case 'IDEMPOTENCY_KEY_REUSED':
      return idempotencyKeyReusedError();
    case 'AMOUNT_LIMIT_EXCEEDED':
      return amountLimitExceededError('credit', outcome.maximum);
    case 'CREDIT_LIMIT_EXCEEDED':
      return userError(
        CreditLimitExceededError,
        ErrorCode.CREDIT_LIMIT_EXCEEDED,
        `The settlement balance and credit limit cover at most ${outcome.available} points`,
        { available: outcome.available },
      );
    case 'WALLET_BALANCE_LIMIT_EXCEEDED':
      return userError(
        WalletBalanceLimitExceededError,
        ErrorCode.WALLET_BALANCE_LIMIT_EXCEEDED,
        `A wallet may hold at most ${outcome.maximum} points`,
        { maximum: outcome.maximum },
      );
  }
}
