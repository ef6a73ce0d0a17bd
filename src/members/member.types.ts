import { createUnionType, Field, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PointsScalar } from '../graphql/points.scalar';
import { Node } from '../graphql/relay';
import {
  ForfeitAmountMismatchError,
  InvalidCredentialsError,
  InvalidTwoFactorCodeError,
  LoginChallengeInvalidError,
  PasswordRejectedError,
  PendingAuthorizationsError,
  TokenInvalidError,
  TwoFactorAlreadyEnabledError,
  TwoFactorCodeRequiredError,
  TwoFactorEnrolmentMissingError,
  TwoFactorNotEnabledError,
} from './member-errors.types';

export enum AccountRole {
  MEMBER = 'member',
  OPERATOR = 'operator',
}
registerEnumType(AccountRole, { name: 'AccountRole' });

@ObjectType('Account', {
  implements: Node,
  description: "A member's profile, sign-in and security settings.",
})
export class AccountView extends Node {
  @Field()
  username!: string;

  @Field()
  email!: string;

  @Field()
  emailVerified!: boolean;

  @Field()
  twoFactorEnabled!: boolean;

  @Field(() => AccountRole)
  role!: AccountRole;

  @Field()
  createdAt!: Date;

  /** Internal: the member's id, for field resolvers. */
  memberId!: string;
}

@ObjectType('Session', { implements: Node })
export class SessionView extends Node {
  @Field()
  createdAt!: Date;

  @Field()
  lastUsedAt!: Date;

  @Field()
  expiresAt!: Date;

  @Field()
  ip!: string;

  @Field()
  userAgent!: string;

  @Field({ description: 'Whether this is the session of the current request.' })
  current!: boolean;
}

@InputType()
export class RegisterInput {
  @Field()
  email!: string;

  @Field({ description: '3 to 32 letters, digits, ".", "_" or "-".' })
  username!: string;

  @Field({
    description:
      'At least 10 characters; not a common password; without the username or e-mail name.',
  })
  password!: string;
}

@InputType()
export class LoginInput {
  @Field({ description: 'Username or e-mail address.' })
  login!: string;

  @Field()
  password!: string;
}

@InputType()
export class CompleteLoginInput {
  @Field()
  challengeToken!: string;

  @Field({ description: 'A 6-digit TOTP code or an unused recovery code.' })
  code!: string;
}

@InputType()
export class ChangePasswordInput {
  @Field()
  currentPassword!: string;

  @Field()
  newPassword!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Required when two-factor authentication is on.',
  })
  twoFactorCode?: string | null;
}

@InputType()
export class ResetPasswordInput {
  @Field()
  token!: string;

  @Field()
  newPassword!: string;
}

@InputType()
export class DisableTotpInput {
  @Field()
  password!: string;

  @Field({ description: 'A TOTP code or an unused recovery code.' })
  code!: string;
}

@InputType()
export class WithdrawInput {
  @Field()
  password!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Required when two-factor authentication is on.',
  })
  twoFactorCode?: string | null;

  @Field(() => PointsScalar, {
    description: 'The forfeit amount shown by withdrawalPreview, confirming it is lost.',
  })
  confirmForfeitAmount!: number;
}

@ObjectType({
  description:
    'The request was taken; what happens next is in the mail, if the address has an account.',
})
export class RequestAccepted {
  @Field()
  message!: string;
}

@ObjectType()
export class EmailVerified {
  @Field()
  verified!: boolean;
}

@ObjectType()
export class LoginSuccess {
  @Field({
    description:
      'Send as Authorization: Bearer <token> on HTTP and in the graphql-ws connection_init.',
  })
  sessionToken!: string;

  @Field()
  expiresAt!: Date;
}

@ObjectType({
  description: 'The password was right; complete the sign-in with completeLogin and a code.',
})
export class TwoFactorRequired {
  @Field()
  challengeToken!: string;

  @Field()
  expiresAt!: Date;
}

@ObjectType()
export class SignedOut {
  @Field(() => Int)
  endedSessions!: number;
}

@ObjectType()
export class PasswordChanged {
  @Field(() => Int, { description: 'Other sessions that were ended.' })
  endedSessions!: number;
}

@ObjectType()
export class TotpEnrollment {
  @Field({ description: 'Base32 secret, for authenticator apps that take it typed in.' })
  secret!: string;

  @Field()
  otpauthUri!: string;

  @Field({ description: 'The otpauth URI as a QR code, a PNG data URL.' })
  qrCodeDataUrl!: string;
}

@ObjectType()
export class TwoFactorEnabled {
  @Field(() => [String], { description: 'Ten single-use recovery codes, shown only now.' })
  recoveryCodes!: string[];
}

@ObjectType()
export class TwoFactorDisabled {
  @Field()
  disabled!: boolean;
}

@ObjectType()
export class PrepaidIdRevealed {
  @Field({ description: 'The full 16 digits of the wallet prepaid ID.' })
  prepaidId!: string;
}

@ObjectType()
export class WithdrawalPreview {
  @Field(() => PointsScalar, { description: 'Points that a withdrawal now would forfeit.' })
  forfeitAmount!: number;

  @Field(() => PointsScalar, {
    description: 'Points held by authorizations; a withdrawal waits for them.',
  })
  held!: number;
}

@ObjectType()
export class Withdrawn {
  @Field(() => PointsScalar)
  forfeited!: number;
}

export const RegisterResult = createUnionType({
  name: 'RegisterResult',
  types: () => [RequestAccepted, PasswordRejectedError] as const,
});

export const VerifyEmailResult = createUnionType({
  name: 'VerifyEmailResult',
  types: () => [EmailVerified, TokenInvalidError] as const,
});

export const LoginResult = createUnionType({
  name: 'LoginResult',
  types: () => [LoginSuccess, TwoFactorRequired, InvalidCredentialsError] as const,
});

export const CompleteLoginResult = createUnionType({
  name: 'CompleteLoginResult',
  types: () => [LoginSuccess, InvalidTwoFactorCodeError, LoginChallengeInvalidError] as const,
});

export const ChangePasswordResult = createUnionType({
  name: 'ChangePasswordResult',
  types: () =>
    [
      PasswordChanged,
      InvalidCredentialsError,
      InvalidTwoFactorCodeError,
      TwoFactorCodeRequiredError,
      PasswordRejectedError,
    ] as const,
});

export const ResetPasswordResult = createUnionType({
  name: 'ResetPasswordResult',
  types: () => [PasswordChanged, TokenInvalidError, PasswordRejectedError] as const,
});

export const EnrollTotpResult = createUnionType({
  name: 'EnrollTotpResult',
  types: () => [TotpEnrollment, TwoFactorAlreadyEnabledError] as const,
});

export const ConfirmTotpResult = createUnionType({
  name: 'ConfirmTotpResult',
  types: () =>
    [
      TwoFactorEnabled,
      InvalidTwoFactorCodeError,
      TwoFactorAlreadyEnabledError,
      TwoFactorEnrolmentMissingError,
    ] as const,
});

export const DisableTotpResult = createUnionType({
  name: 'DisableTotpResult',
  types: () =>
    [
      TwoFactorDisabled,
      InvalidCredentialsError,
      InvalidTwoFactorCodeError,
      TwoFactorNotEnabledError,
    ] as const,
});

export const RevealPrepaidIdResult = createUnionType({
  name: 'RevealPrepaidIdResult',
  types: () => [PrepaidIdRevealed, TwoFactorCodeRequiredError, InvalidTwoFactorCodeError] as const,
});

export const WithdrawResult = createUnionType({
  name: 'WithdrawResult',
  types: () =>
    [
      Withdrawn,
      InvalidCredentialsError,
      InvalidTwoFactorCodeError,
      TwoFactorCodeRequiredError,
      ForfeitAmountMismatchError,
      PendingAuthorizationsError,
    ] as const,
});

export const SESSION_TYPE_NAME = 'Session';
export const ACCOUNT_TYPE_NAME = 'Account';
