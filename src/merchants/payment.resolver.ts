import { Arg, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { requireMerchant, type RequestContext } from '../graphql/context';
import { ErrorCode, userError } from '../graphql/errors';
import { fromGlobalId, isUuid } from '../graphql/relay';
import { toTransactionView, TRANSACTION_TYPE_NAME } from '../transactions/transaction.type';
import type { ChargeOutcome, RefundOutcome } from './payment.service';
import {
  ChargeInput,
  ChargeResult,
  ChargeSuccess,
  InsufficientBalanceError,
  PrepaidBalance,
  RefundExceedsChargeError,
  RefundInput,
  RefundResult,
  RefundSuccess,
  TransactionNotFoundError,
  invalidPrepaidIdError,
  idempotencyKeyReusedError,
  amountLimitExceededError,
} from './payment.types';
import {
  checkDescription,
  checkIdempotencyKey,
  checkMetadata,
  checkOrderReference,
  checkPositiveAmount,
} from './payment.validation';

@Resolver()
export class PaymentResolver {
  @Mutation(() => ChargeResult, {
    description: 'Charges a prepaid ID: a wallet, a card or a one-time ID.',
  })
  async charge(
    @Arg('input') input: ChargeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof ChargeResult> {
    const merchant = requireMerchant(context, 'charge');
    checkPositiveAmount(input.amount);
    checkIdempotencyKey(input.idempotencyKey);
    checkOrderReference(input.orderReference);
    checkDescription(input.description);
    checkMetadata(input.metadata);

    const outcome = await context.services.payments.charge(context.em, merchant.merchantId, input);
    return chargeResult(outcome);
  }

  @Mutation(() => RefundResult, {
    description: 'Refunds a charge in full or in part, back to the prepaid ID it came from.',
  })
  async refund(
    @Arg('input') input: RefundInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof RefundResult> {
    const merchant = requireMerchant(context, 'refund');
    if (input.amount !== null && input.amount !== undefined) checkPositiveAmount(input.amount);
    checkIdempotencyKey(input.idempotencyKey);
    checkDescription(input.description);

    const transactionId = fromGlobalId(TRANSACTION_TYPE_NAME, input.transactionId);
    if (!transactionId || !isUuid(transactionId)) {
      return userError(
        TransactionNotFoundError,
        ErrorCode.TRANSACTION_NOT_FOUND,
        'No such charge of this merchant',
      );
    }
    const outcome = await context.services.payments.refund(context.em, merchant.merchantId, {
      ...input,
      transactionId,
    });
    return refundResult(outcome);
  }

  @Query(() => PrepaidBalance, {
    nullable: true,
    description:
      'Whether a prepaid ID can pay, and how much. Open to anyone, and rate limited per API key or, without one, per IP address.',
  })
  async prepaidBalance(
    @Arg('prepaidId') prepaidId: string,
    @Ctx() context: RequestContext,
  ): Promise<PrepaidBalance> {
    await limitInquiries(context);
    return Object.assign(
      new PrepaidBalance(),
      await context.services.payments.inquire(context.em, prepaidId),
    );
  }
}

/**
 * Counts one balance inquiry against the caller's limit: the API key for a
 * merchant, the IP address for anyone else. Each alias of a request counts,
 * so IDs cannot be enumerated in bulk.
 */
async function limitInquiries(context: RequestContext): Promise<void> {
  const caller =
    context.caller.kind === 'merchant' ? requireMerchant(context, 'inquiry') : undefined;
  const key = caller ? `key:${caller.apiKeyId}` : `ip:${context.ip}`;
  await context.services.limits.consume('inquiryPerCaller', key);
}

function chargeResult(outcome: ChargeOutcome): typeof ChargeResult {
  if (outcome.ok) {
    return Object.assign(new ChargeSuccess(), {
      transaction: toTransactionView(outcome.transaction, outcome.transaction.creditAccountId),
      balanceAfter: outcome.balanceAfter,
      replayed: outcome.replayed,
    });
  }
  switch (outcome.code) {
    case 'INSUFFICIENT_BALANCE':
      return userError(
        InsufficientBalanceError,
        ErrorCode.INSUFFICIENT_BALANCE,
        'The prepaid ID has too few points for this charge',
        {
          available: outcome.available,
        },
      );
    case 'INVALID_PREPAID_ID':
      return invalidPrepaidIdError();
    case 'IDEMPOTENCY_KEY_REUSED':
      return idempotencyKeyReusedError();
    case 'AMOUNT_LIMIT_EXCEEDED':
      return amountLimitExceededError('charge', outcome.maximum);
  }
}

function refundResult(outcome: RefundOutcome): typeof RefundResult {
  if (outcome.ok) {
    return Object.assign(new RefundSuccess(), {
      transaction: toTransactionView(outcome.transaction, outcome.transaction.debitAccountId),
      refundableRemaining: outcome.refundable,
      replayed: outcome.replayed,
    });
  }
  switch (outcome.code) {
    case 'TRANSACTION_NOT_FOUND':
      return userError(
        TransactionNotFoundError,
        ErrorCode.TRANSACTION_NOT_FOUND,
        'No such charge of this merchant',
      );
    case 'REFUND_EXCEEDS_CHARGE':
      return userError(
        RefundExceedsChargeError,
        ErrorCode.REFUND_EXCEEDS_CHARGE,
        `At most ${outcome.refundable} points of this charge can still be refunded`,
        {
          refundable: outcome.refundable,
        },
      );
    case 'IDEMPOTENCY_KEY_REUSED':
      return idempotencyKeyReusedError();
    case 'AMOUNT_LIMIT_EXCEEDED':
      return amountLimitExceededError('refund', outcome.maximum);
  }
}
