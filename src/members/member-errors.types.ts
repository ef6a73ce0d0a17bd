import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { ErrorCode, UserError, userError } from '../graphql/errors';
import { PointsScalar } from '../graphql/points.scalar';

export enum PasswordRejectionReason {
  TOO_SHORT = 'TOO_SHORT',
  TOO_LONG = 'TOO_LONG',
  COMMON = 'COMMON',
  CONTAINS_USERNAME = 'CONTAINS_USERNAME',
  CONTAINS_EMAIL = 'CONTAINS_EMAIL',
}
registerEnumType(PasswordRejectionReason, { name: 'PasswordRejectionReason' });

@ObjectType({
  implements: UserError,
  description: 'The new password breaks a rule, which `reason` names.',
})
export class PasswordRejectedError extends UserError {
  @Field(() => PasswordRejectionReason)
  reason!: PasswordRejectionReason;
}

@ObjectType({ implements: UserError, description: 'The token is unknown, used or expired.' })
export class TokenInvalidError extends UserError {}

@ObjectType({ implements: UserError, description: 'The login or password is wrong.' })
export class InvalidCredentialsError extends UserError {}

@ObjectType({ implements: UserError })
export class InvalidTwoFactorCodeError extends UserError {}

@ObjectType({
  implements: UserError,
  description: 'Two-factor authentication is on, so this action needs a code.',
})
export class TwoFactorCodeRequiredError extends UserError {}

@ObjectType({
  implements: UserError,
  description: 'The login challenge is unknown, used or expired; sign in again.',
})
export class LoginChallengeInvalidError extends UserError {}

@ObjectType({ implements: UserError })
export class TwoFactorAlreadyEnabledError extends UserError {}

@ObjectType({ implements: UserError })
export class TwoFactorNotEnabledError extends UserError {}

@ObjectType({ implements: UserError, description: 'Call enrollTotp before confirmTotp.' })
export class TwoFactorEnrolmentMissingError extends UserError {}

@ObjectType({
  implements: UserError,
  description: 'The balance to forfeit is not the confirmed amount.',
})
export class ForfeitAmountMismatchError extends UserError {
  @Field(() => PointsScalar, { description: 'The balance that a withdrawal now would forfeit.' })
  amount!: number;
}

@ObjectType({
  implements: UserError,
  description: 'Authorizations still hold points; wait until they are captured or released.',
})
export class PendingAuthorizationsError extends UserError {
  @Field(() => PointsScalar)
  held!: number;
}

/** Messages of the member-side errors, kept in one place so that equal cases read the same. */
export const MEMBER_ERROR_MESSAGES = {
  [ErrorCode.INVALID_CREDENTIALS]: 'The login or password is wrong',
  [ErrorCode.INVALID_TWO_FACTOR_CODE]: 'The two-factor code is wrong or was used already',
  [ErrorCode.TWO_FACTOR_CODE_REQUIRED]: 'Two-factor authentication is on: send a current code',
  [ErrorCode.LOGIN_CHALLENGE_INVALID]: 'The sign-in has expired or was completed; sign in again',
  [ErrorCode.TOKEN_INVALID]: 'The link is invalid, used or expired; request a new one',
  [ErrorCode.TWO_FACTOR_ALREADY_ENABLED]: 'Two-factor authentication is already on',
  [ErrorCode.TWO_FACTOR_NOT_ENABLED]: 'Two-factor authentication is not on',
  [ErrorCode.TWO_FACTOR_ENROLMENT_MISSING]: 'Start enrolment with enrollTotp first',
} as const;

type MemberErrorCode = keyof typeof MEMBER_ERROR_MESSAGES;

const ERROR_TYPES: Record<MemberErrorCode, new () => UserError> = {
  [ErrorCode.INVALID_CREDENTIALS]: InvalidCredentialsError,
  [ErrorCode.INVALID_TWO_FACTOR_CODE]: InvalidTwoFactorCodeError,
  [ErrorCode.TWO_FACTOR_CODE_REQUIRED]: TwoFactorCodeRequiredError,
  [ErrorCode.LOGIN_CHALLENGE_INVALID]: LoginChallengeInvalidError,
  [ErrorCode.TOKEN_INVALID]: TokenInvalidError,
  [ErrorCode.TWO_FACTOR_ALREADY_ENABLED]: TwoFactorAlreadyEnabledError,
  [ErrorCode.TWO_FACTOR_NOT_ENABLED]: TwoFactorNotEnabledError,
  [ErrorCode.TWO_FACTOR_ENROLMENT_MISSING]: TwoFactorEnrolmentMissingError,
};

/** Builds the typed error result of a member-side failure code that carries no data. */
export function memberError(code: MemberErrorCode): UserError {
  return userError(ERROR_TYPES[code], code, MEMBER_ERROR_MESSAGES[code]);
}

/** Builds the typed error result of a rejected password. */
export function passwordRejected(reason: string, message: string): PasswordRejectedError {
  return userError(PasswordRejectedError, ErrorCode.PASSWORD_REJECTED, message, {
    reason: reason as PasswordRejectionReason,
  });
}
