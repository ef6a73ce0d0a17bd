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

export function unauthenticated(message = 'Authentication required: send Authorization: Bearer <token>'): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });
}

export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}
