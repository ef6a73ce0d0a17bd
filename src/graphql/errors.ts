import 'reflect-metadata';
import { GraphQLError } from 'graphql';
import { Field, InterfaceType, registerEnumType } from 'type-graphql';

/** Codes of the expected business failures returned as typed error results. */
export enum ErrorCode {
  INSUFFICIENT_BALANCE = 'INSUFFICIENT_BALANCE',
  INVALID_PREPAID_ID = 'INVALID_PREPAID_ID',
  IDEMPOTENCY_KEY_REUSED = 'IDEMPOTENCY_KEY_REUSED',
  AMOUNT_LIMIT_EXCEEDED = 'AMOUNT_LIMIT_EXCEEDED',
  REFUND_EXCEEDS_CHARGE = 'REFUND_EXCEEDS_CHARGE',
  TRANSACTION_NOT_FOUND = 'TRANSACTION_NOT_FOUND',
  PASSWORD_REJECTED = 'PASSWORD_REJECTED',
  TOKEN_INVALID = 'TOKEN_INVALID',
  INVALID_CREDENTIALS = 'INVALID_CREDENTIALS',
  INVALID_TWO_FACTOR_CODE = 'INVALID_TWO_FACTOR_CODE',
  TWO_FACTOR_CODE_REQUIRED = 'TWO_FACTOR_CODE_REQUIRED',
  LOGIN_CHALLENGE_INVALID = 'LOGIN_CHALLENGE_INVALID',
  TWO_FACTOR_ALREADY_ENABLED = 'TWO_FACTOR_ALREADY_ENABLED',
  TWO_FACTOR_NOT_ENABLED = 'TWO_FACTOR_NOT_ENABLED',
  TWO_FACTOR_ENROLMENT_MISSING = 'TWO_FACTOR_ENROLMENT_MISSING',
  FORFEIT_AMOUNT_MISMATCH = 'FORFEIT_AMOUNT_MISMATCH',
  PENDING_AUTHORIZATIONS = 'PENDING_AUTHORIZATIONS',
  CARD_EMPTY = 'CARD_EMPTY',
  TRANSFER_NOT_ALLOWED = 'TRANSFER_NOT_ALLOWED',
  WALLET_UNAVAILABLE = 'WALLET_UNAVAILABLE',
  WALLET_BALANCE_LIMIT_EXCEEDED = 'WALLET_BALANCE_LIMIT_EXCEEDED',
  CREDIT_LIMIT_EXCEEDED = 'CREDIT_LIMIT_EXCEEDED',
  ROTATION_TOO_SOON = 'ROTATION_TOO_SOON',
  ONE_TIME_ID_NOT_FOUND = 'ONE_TIME_ID_NOT_FOUND',
  AUTHORIZATION_NOT_FOUND = 'AUTHORIZATION_NOT_FOUND',
  AUTHORIZATION_NOT_PENDING = 'AUTHORIZATION_NOT_PENDING',
  AUTHORIZATION_EXPIRED = 'AUTHORIZATION_EXPIRED',
  CAPTURE_EXCEEDS_AUTHORIZATION = 'CAPTURE_EXCEEDS_AUTHORIZATION',
  NOT_FOUND = 'NOT_FOUND',
}

registerEnumType(ErrorCode, {
  name: 'ErrorCode',
  description: 'Machine-readable code of an expected failure; clients switch on it.',
});

@InterfaceType({ description: 'An expected business failure returned in a mutation result union.' })
export abstract class UserError {
  @Field(() => ErrorCode)
  code!: ErrorCode;

  @Field({ description: 'A sentence for people; do not parse it.' })
  message!: string;
}

/** A GraphQL error for input that has the wrong shape or range; nothing was changed. */
export function badUserInput(message: string, field?: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', field } });
}

export function unauthenticated(
  message = 'Authentication required: send Authorization: Bearer <token>',
): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });
}

export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}

/** A GraphQL error for a caller over a rate limit; nothing was attempted. */
export function rateLimited(retryAfterSeconds: number): GraphQLError {
  return new GraphQLError(`Too many attempts; try again in ${retryAfterSeconds} seconds`, {
    extensions: { code: 'RATE_LIMITED', retryAfterSeconds },
  });
}

/** Builds a typed error result with its code and message. */
export function userError<T extends UserError>(
  type: new () => T,
  code: ErrorCode,
  message: string,
  fields: Partial<T> = {},
): T {
  return Object.assign(new type(), { code, message }, fields);
}
