import { Arg, Ctx, Mutation, Resolver } from 'type-graphql';
import { requireMember, type RequestContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { memberError, passwordRejected } from './member-errors.types';
import { checkEmail, checkPasswordShape } from './member-input';
import {
  ChangePasswordInput,
  ChangePasswordResult,
  ConfirmTotpResult,
  DisableTotpInput,
  DisableTotpResult,
  EnrollTotpResult,
  PasswordChanged,
  RequestAccepted,
  ResetPasswordInput,
  ResetPasswordResult,
  TotpEnrollment,
  TwoFactorDisabled,
  TwoFactorEnabled,
} from './member.types';

const RESET_REQUESTED =
  'If the address has an account, a mail with a reset link valid for one hour is on its way.';
const REMINDER_REQUESTED = 'If the address has an account, a mail with the username is on its way.';

@Resolver()
export class SecurityResolver {
  @Mutation(() => ChangePasswordResult, {
    nullable: true,
    description: 'Changes the password and ends every other session.',
  })
  async changePassword(
    @Arg('input') input: ChangePasswordInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof ChangePasswordResult> {
    const caller = requireMember(context);
    checkPasswordShape(input.currentPassword, 'currentPassword');
    checkPasswordShape(input.newPassword, 'newPassword');
    const outcome = await context.services.passwords.change(context.em, caller, input, context.ip);
    if (outcome.ok)
      return Object.assign(new PasswordChanged(), {
        endedSessions: outcome.endedSessionIds.length,
      });
    if ('reason' in outcome) return passwordRejected(outcome.reason, outcome.message);
    return memberError(ErrorCode[outcome.code]);
  }

  @Mutation(() => RequestAccepted, {
    nullable: true,
    description: 'Mails a password reset link; the response is the same for every address.',
  })
  async requestPasswordReset(
    @Arg('email') email: string,
    @Ctx() context: RequestContext,
  ): Promise<RequestAccepted> {
    await context.services.passwords.requestReset(context.em, checkEmail(email), context.ip);
    return Object.assign(new RequestAccepted(), { message: RESET_REQUESTED });
  }

  @Mutation(() => ResetPasswordResult, {
    nullable: true,
    description: 'Sets a new password with the token from the mail; ends every session.',
  })
  async resetPassword(
    @Arg('input') input: ResetPasswordInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof ResetPasswordResult> {
    checkPasswordShape(input.newPassword, 'newPassword');
    const outcome = await context.services.passwords.reset(
      context.em,
      input.token,
      input.newPassword,
      context.ip,
    );
    if (outcome.ok)
      return Object.assign(new PasswordChanged(), {
        endedSessions: outcome.endedSessionIds.length,
      });
    if ('reason' in outcome) return passwordRejected(outcome.reason, outcome.message);
    return memberError(ErrorCode.TOKEN_INVALID);
  }

  @Mutation(() => RequestAccepted, {
    nullable: true,
    description: 'Mails the username; the response is the same for every address.',
  })
  async requestUsernameReminder(
    @Arg('email') email: string,
    @Ctx() context: RequestContext,
  ): Promise<RequestAccepted> {
    await context.services.passwords.remindUsername(context.em, checkEmail(email), context.ip);
    return Object.assign(new RequestAccepted(), { message: REMINDER_REQUESTED });
  }

  @Mutation(() => EnrollTotpResult, {
    nullable: true,
    description: 'Starts TOTP enrolment; confirmTotp with a first code turns it on.',
  })
  async enrollTotp(@Ctx() context: RequestContext): Promise<typeof EnrollTotpResult> {
    const caller = requireMember(context);
    const outcome = await context.services.twoFactor.enroll(context.em, caller.memberId);
    if ('ok' in outcome) return memberError(ErrorCode.TWO_FACTOR_ALREADY_ENABLED);
    return Object.assign(new TotpEnrollment(), outcome);
  }

  @Mutation(() => ConfirmTotpResult, {
    nullable: true,
    description: 'Turns TOTP on with a first code and returns recovery codes once.',
  })
  async confirmTotp(
    @Arg('code') code: string,
    @Ctx() context: RequestContext,
  ): Promise<typeof ConfirmTotpResult> {
    const caller = requireMember(context);
    const outcome = await context.services.twoFactor.confirm(
      context.em,
      caller.memberId,
      code,
      context.ip,
    );
    if (Array.isArray(outcome))
      return Object.assign(new TwoFactorEnabled(), { recoveryCodes: outcome });
    return memberError(ErrorCode[outcome.code]);
  }

  @Mutation(() => DisableTotpResult, {
    nullable: true,
    description: 'Turns TOTP off; needs the password and a code.',
  })
  async disableTotp(
    @Arg('input') input: DisableTotpInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof DisableTotpResult> {
    const caller = requireMember(context);
    checkPasswordShape(input.password);
    const outcome = await context.services.twoFactor.disable(
      context.em,
      caller.memberId,
      input.password,
      input.code,
      context.ip,
    );
    if (outcome.ok) return Object.assign(new TwoFactorDisabled(), { disabled: true });
    return memberError(ErrorCode[outcome.code]);
  }
}
