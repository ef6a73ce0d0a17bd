import { Arg, Ctx, Mutation, Resolver } from 'type-graphql';
import { requireMerchant, type RequestContext } from '../graphql/context';
import { ErrorCode, userError } from '../graphql/errors';
import { fromGlobalId, isUuid } from '../graphql/relay';
import {
  toTransactionView,
  TransactionKind,
  TRANSACTION_TYPE_NAME,
} from '../transactions/transaction.type';
import type { SettlementFailure } from './authorization-settlement.service';
import type { AuthorizeOutcome, CaptureOutcome, VoidOutcome } from './authorization.service';
import {
  AuthorizationExpiredError,
  AuthorizationNotFoundError,
  AuthorizationNotPendingError,
  AuthorizationSuccess,
  AuthorizeInput,
  AuthorizeResult,
  CaptureExceedsAuthorizationError,
  CaptureInput,
  CaptureResult,
  CaptureSuccess,
  VoidAuthorizationResult,
  VoidInput,
  VoidSuccess,
} from './authorization.types';
import {
  IdempotencyKeyReusedError,
  InsufficientBalanceError,
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

const NOT_FOUND_MESSAGE = 'No such authorization of this merchant';

/** Two-step payments. Every operation needs a merchant key with the `charge` scope. */
@Resolver()
export class AuthorizationResolver {
  @Mutation(() => AuthorizeResult, {
    description:
      'Holds an amount on a prepaid ID (a wallet, a card or a one-time ID) until it is captured, voided or expires.',
  })
  async authorize(
    @Arg('input') input: AuthorizeInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof AuthorizeResult> {
    const merchant = requireMerchant(context, 'charge');
    checkPositiveAmount(input.amount);
    checkIdempotencyKey(input.idempotencyKey);
    checkOrderReference(input.orderReference);
    checkDescription(input.description);
    checkMetadata(input.metadata);

    const outcome = await context.services.authorizations.authorize(
      context.em,
      merchant.merchantId,
      input,
    );
    return authorizeResult(outcome);
  }

  @Mutation(() => CaptureResult, {
    description:
      'Captures up to the held amount of an authorization and releases the rest of the hold.',
  })
  async capture(
    @Arg('input') input: CaptureInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof CaptureResult> {
    const merchant = requireMerchant(context, 'charge');
    if (input.amount !== null && input.amount !== undefined) checkPositiveAmount(input.amount);
    if (input.idempotencyKey !== null && input.idempotencyKey !== undefined) {
      checkIdempotencyKey(input.idempotencyKey);
    }

    const authorizationId = databaseIdOf(input.authorizationId);
    if (!authorizationId) return notFound();
    const outcome = await context.services.authorizations.capture(context.em, merchant.merchantId, {
      ...input,
      authorizationId,
    });
    return captureResult(outcome);
  }

  @Mutation(() => VoidAuthorizationResult, {
    description: 'Releases the whole hold of an authorization. No points move.',
  })
  async voidAuthorization(
    @Arg('input') input: VoidInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof VoidAuthorizationResult> {
    const merchant = requireMerchant(context, 'charge');
    if (input.idempotencyKey !== null && input.idempotencyKey !== undefined) {
      checkIdempotencyKey(input.idempotencyKey);
    }

    const authorizationId = databaseIdOf(input.authorizationId);
    if (!authorizationId) return notFound();
    const outcome = await context.services.authorizations.voidAuthorization(
      context.em,
      merchant.merchantId,
      { ...input, authorizationId },
    );
    return voidResult(outcome);
  }
}

/** Decodes a Transaction global ID, or returns undefined for anything that is not one. */
function databaseIdOf(globalId: string): string | undefined {
  const id = fromGlobalId(TRANSACTION_TYPE_NAME, globalId);
  return id && isUuid(id) ? id : undefined;
}

function notFound(): AuthorizationNotFoundError {
  return userError(
    AuthorizationNotFoundError,
    ErrorCode.AUTHORIZATION_NOT_FOUND,
    NOT_FOUND_MESSAGE,
  );
}

function authorizeResult(outcome: AuthorizeOutcome): typeof AuthorizeResult {
  if (outcome.ok) {
    return Object.assign(new AuthorizationSuccess(), {
      authorization: toTransactionView(outcome.transaction, outcome.transaction.creditAccountId),
      expiresAt: outcome.transaction.expiresAt!,
      replayed: outcome.replayed,
    });
  }
  switch (outcome.code) {
    case 'INSUFFICIENT_BALANCE':
      return userError(
        InsufficientBalanceError,
        ErrorCode.INSUFFICIENT_BALANCE,
        'The prepaid ID has too few available points for this authorization',
        { available: outcome.available },
      );
    case 'INVALID_PREPAID_ID':
      return invalidPrepaidIdError();
    case 'IDEMPOTENCY_KEY_REUSED':
      return idempotencyKeyReusedError();
    case 'AMOUNT_LIMIT_EXCEEDED':
      return amountLimitExceededError('authorization', outcome.maximum);
  }
}

function captureResult(outcome: CaptureOutcome): typeof CaptureResult {
  if (outcome.ok) {
    return Object.assign(new CaptureSuccess(), {
      transaction: toTransactionView(outcome.transaction, outcome.transaction.creditAccountId),
      balanceAfter: outcome.balanceAfter,
      released: outcome.released,
      replayed: outcome.replayed,
    });
  }
  if (outcome.code === 'INVALID_PREPAID_ID') return invalidPrepaidIdError();
  if (outcome.code === 'CAPTURE_EXCEEDS_AUTHORIZATION') {
    return userError(
      CaptureExceedsAuthorizationError,
      ErrorCode.CAPTURE_EXCEEDS_AUTHORIZATION,
      `A capture may take at most the ${outcome.held} points held`,
      { held: outcome.held },
    );
  }
  return settlementError(outcome);
}

function voidResult(outcome: VoidOutcome): typeof VoidAuthorizationResult {
  if (outcome.ok) {
    return Object.assign(new VoidSuccess(), {
      transaction: toTransactionView(outcome.transaction, outcome.transaction.creditAccountId),
      replayed: outcome.replayed,
    });
  }
  return settlementError(outcome);
}

function settlementError(
  failure: SettlementFailure,
):
  | AuthorizationNotFoundError
  | AuthorizationNotPendingError
  | AuthorizationExpiredError
  | IdempotencyKeyReusedError {
  switch (failure.code) {
    case 'AUTHORIZATION_NOT_FOUND':
      return notFound();
    case 'AUTHORIZATION_NOT_PENDING':
      return userError(
        AuthorizationNotPendingError,
        ErrorCode.AUTHORIZATION_NOT_PENDING,
        failure.settledBy === 'capture'
          ? 'This authorization was captured already'
          : 'This authorization was voided already',
        {
          settledBy:
            failure.settledBy === 'capture' ? TransactionKind.CAPTURE : TransactionKind.VOID,
        },
      );
    case 'AUTHORIZATION_EXPIRED':
      return userError(
        AuthorizationExpiredError,
        ErrorCode.AUTHORIZATION_EXPIRED,
        `This authorization expired at ${failure.expiredAt.toISOString()} and its hold was released`,
        { expiredAt: failure.expiredAt },
      );
    case 'IDEMPOTENCY_KEY_REUSED':
      return idempotencyKeyReusedError();
  }
}
