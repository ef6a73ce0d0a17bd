import { Arg, Ctx, Mutation, Resolver } from 'type-graphql';
import { clientOf, requireMember, type RequestContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { fromGlobalId, isUuid } from '../graphql/relay';
import { memberError, passwordRejected } from './member-errors.types';
import { checkEmail, checkLogin, checkPasswordShape, checkUsername } from './member-input';
import {
  CompleteLoginInput,
  CompleteLoginResult,
  EmailVerified,
  LoginInput,
  LoginResult,
  LoginSuccess,
  RegisterInput,
  RegisterResult,
  RequestAccepted,
  SESSION_TYPE_NAME,
  SignedOut,
  TwoFactorRequired,
  VerifyEmailResult,
} from './member.types';
import type { LoginOutcome } from './login.service';

const REGISTRATION_ACCEPTED =
  'Thanks. Check your mailbox: we sent a mail to the address with the next step.';
const VERIFICATION_RESENT =
  'If the address has an unverified account, a new verification mail is on its way.';

@Resolver()
export class SignInResolver {
  @Mutation(() => RegisterResult, {
    nullable: true,
    description:
      'Registers a member. Taken addresses and usernames get the same response; a mail explains.',
  })
  async register(
    @Arg('input') input: RegisterInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof RegisterResult> {
    const email = checkEmail(input.email);
    const username = checkUsername(input.username);
    checkPasswordShape(input.password);
    const outcome = await context.services.registration.register(
      context.em,
      { email, username, password: input.password },
      context.ip,
    );
    if (!outcome.ok) return passwordRejected(outcome.reason, outcome.message);
    return Object.assign(new RequestAccepted(), { message: REGISTRATION_ACCEPTED });
  }

  @Mutation(() => VerifyEmailResult, {
    nullable: true,
    description: 'Verifies the e-mail address with the token from the mail.',
  })
  async verifyEmail(
    @Arg('token') token: string,
    @Ctx() context: RequestContext,
  ): Promise<typeof VerifyEmailResult> {
    const verified = await context.services.registration.verifyEmail(context.em, token, context.ip);
    if (!verified) return memberError(ErrorCode.TOKEN_INVALID);
    return Object.assign(new EmailVerified(), { verified: true });
  }

  @Mutation(() => RequestAccepted, {
    nullable: true,
    description: 'Sends a new verification mail to an unverified address.',
  })
  async resendVerification(
    @Arg('email') email: string,
    @Ctx() context: RequestContext,
  ): Promise<RequestAccepted> {
    await context.services.registration.resendVerification(context.em, checkEmail(email));
    return Object.assign(new RequestAccepted(), { message: VERIFICATION_RESENT });
  }

  @Mutation(() => LoginResult, {
    nullable: true,
    description: 'Signs in; with two-factor authentication on, completeLogin follows.',
  })
  async login(
    @Arg('input') input: LoginInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof LoginResult> {
    checkPasswordShape(input.password);
    const outcome = await context.services.login.login(
      context.em,
      checkLogin(input.login),
      input.password,
      clientOf(context),
    );
    return loginResult(outcome);
  }

  @Mutation(() => CompleteLoginResult, {
    nullable: true,
    description: 'Completes a sign-in with a TOTP code or a recovery code.',
  })
  async completeLogin(
    @Arg('input') input: CompleteLoginInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof CompleteLoginResult> {
    const outcome = await context.services.login.completeLogin(
      context.em,
      input.challengeToken,
      input.code,
      clientOf(context),
    );
    return loginResult(outcome) as typeof CompleteLoginResult;
  }

  @Mutation(() => SignedOut, { nullable: true, description: 'Ends the current session.' })
  async logout(@Ctx() context: RequestContext): Promise<SignedOut> {
    const caller = requireMember(context);
    const ended = await context.services.accounts.endSession(
      context.em,
      caller,
      caller.sessionId,
      context.ip,
    );
    return Object.assign(new SignedOut(), { endedSessions: ended ? 1 : 0 });
  }

  @Mutation(() => SignedOut, {
    nullable: true,
    description: 'Ends one of your sessions, by its id from viewer.sessions.',
  })
  async endSession(
    @Arg('sessionId') sessionId: string,
    @Ctx() context: RequestContext,
  ): Promise<SignedOut> {
    const caller = requireMember(context);
    const id = fromGlobalId(SESSION_TYPE_NAME, sessionId);
    const valid = id !== undefined && isUuid(id);
    const ended =
      valid && (await context.services.accounts.endSession(context.em, caller, id, context.ip));
    return Object.assign(new SignedOut(), { endedSessions: ended ? 1 : 0 });
  }

  @Mutation(() => SignedOut, {
    nullable: true,
    description: 'Ends every session of the account, this one included.',
  })
  async logoutEverywhere(@Ctx() context: RequestContext): Promise<SignedOut> {
    const caller = requireMember(context);
    const count = await context.services.accounts.endAllSessions(context.em, caller, context.ip);
    return Object.assign(new SignedOut(), { endedSessions: count });
  }
}

function loginResult(outcome: LoginOutcome): typeof LoginResult | typeof CompleteLoginResult {
  switch (outcome.kind) {
    case 'session':
      return Object.assign(new LoginSuccess(), {
        sessionToken: outcome.token,
        expiresAt: outcome.expiresAt,
      });
    case 'challenge':
      return Object.assign(new TwoFactorRequired(), {
        challengeToken: outcome.challengeToken,
        expiresAt: outcome.expiresAt,
      });
    case 'failed':
      return memberError(ErrorCode[outcome.code]);
  }
}
