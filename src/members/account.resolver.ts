import { Arg, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { sqlFor } from '../database/sql';
import { requireMember, type RequestContext } from '../graphql/context';
import { ErrorCode, userError } from '../graphql/errors';
import { toGlobalId } from '../graphql/relay';
import { toWalletView } from '../wallets/wallet.resolver';
import { WalletView } from '../wallets/wallet.types';
import {
  ForfeitAmountMismatchError,
  memberError,
  PendingAuthorizationsError,
} from './member-errors.types';
import { checkPasswordShape } from './member-input';
import type { MemberRecord } from './member.queries';
import {
  AccountRole,
  AccountView,
  ACCOUNT_TYPE_NAME,
  SessionView,
  SESSION_TYPE_NAME,
  WithdrawalPreview,
  WithdrawInput,
  WithdrawResult,
  Withdrawn,
} from './member.types';

@Resolver(() => AccountView)
export class AccountResolver {
  @Query(() => AccountView, {
    nullable: true,
    description: 'The signed-in member; null without a session.',
  })
  async viewer(@Ctx() context: RequestContext): Promise<AccountView | null> {
    if (context.caller.kind !== 'member') return null;
    // The profile is read only if the operation selects one of its fields:
    // a dashboard that asks for the balance needs the wallet alone.
    const { memberId } = context.caller;
    return Object.assign(new AccountView(), {
      id: toGlobalId(ACCOUNT_TYPE_NAME, memberId),
      memberId,
    });
  }

  @FieldResolver()
  async username(@Root() account: AccountView, @Ctx() context: RequestContext): Promise<string> {
    return (await profileOf(context, account.memberId)).username;
  }

  @FieldResolver()
  async email(@Root() account: AccountView, @Ctx() context: RequestContext): Promise<string> {
    return (await profileOf(context, account.memberId)).email;
  }

  @FieldResolver()
  async emailVerified(
    @Root() account: AccountView,
    @Ctx() context: RequestContext,
  ): Promise<boolean> {
    return (await profileOf(context, account.memberId)).emailVerified;
  }

  @FieldResolver()
  async twoFactorEnabled(
    @Root() account: AccountView,
    @Ctx() context: RequestContext,
  ): Promise<boolean> {
    return (await profileOf(context, account.memberId)).twoFactorEnabled;
  }

  @FieldResolver(() => AccountRole)
  async role(@Root() account: AccountView, @Ctx() context: RequestContext): Promise<AccountRole> {
    return (await profileOf(context, account.memberId)).role as AccountRole;
  }

  @FieldResolver()
  async createdAt(@Root() account: AccountView, @Ctx() context: RequestContext): Promise<Date> {
    return (await profileOf(context, account.memberId)).createdAt;
  }

  @FieldResolver(() => WalletView, { nullable: true })
  async wallet(
    @Root() account: AccountView,
    @Ctx() context: RequestContext,
  ): Promise<WalletView | null> {
    const wallet = await context.services.wallets.findByMember(
      sqlFor(context.em),
      account.memberId,
    );
    return wallet ? toWalletView(wallet) : null;
  }

  @FieldResolver(() => [SessionView], { description: 'Live sessions, newest first.' })
  async sessions(
    @Root() account: AccountView,
    @Ctx() context: RequestContext,
  ): Promise<SessionView[]> {
    const caller = requireMember(context);
    const sessions = await context.services.accounts.listSessions(context.em, account.memberId);
    return sessions.map((session) =>
      Object.assign(new SessionView(), {
        id: toGlobalId(SESSION_TYPE_NAME, session.id),
        createdAt: session.createdAt,
        lastUsedAt: session.lastUsedAt,
        expiresAt: session.expiresAt,
        ip: session.ip,
        userAgent: session.userAgent,
        current: session.id === caller.sessionId,
      }),
    );
  }

  @Query(() => WithdrawalPreview, {
    description: 'What a withdrawal now would forfeit; confirm it in withdraw.',
  })
  async withdrawalPreview(@Ctx() context: RequestContext): Promise<WithdrawalPreview> {
    const caller = requireMember(context);
    return Object.assign(
      new WithdrawalPreview(),
      await context.services.withdrawals.preview(context.em, caller.memberId),
    );
  }

  @Mutation(() => WithdrawResult, {
    nullable: true,
    description:
      'Closes the account: the balance is forfeited, the prepaid IDs stop working, every session ends and personal data is erased.',
  })
  async withdraw(
    @Arg('input') input: WithdrawInput,
    @Ctx() context: RequestContext,
  ): Promise<typeof WithdrawResult> {
    const caller = requireMember(context);
    checkPasswordShape(input.password);
    const outcome = await context.services.withdrawals.withdraw(
      context.em,
      caller.memberId,
      input,
      context.ip,
    );
    if (outcome.ok) return Object.assign(new Withdrawn(), { forfeited: outcome.forfeited });
    switch (outcome.code) {
      case 'FORFEIT_AMOUNT_MISMATCH':
        return userError(
          ForfeitAmountMismatchError,
          ErrorCode.FORFEIT_AMOUNT_MISMATCH,
          `The balance to forfeit is ${outcome.amount} points; confirm that amount`,
          { amount: outcome.amount },
        );
      case 'PENDING_AUTHORIZATIONS':
        return userError(
          PendingAuthorizationsError,
          ErrorCode.PENDING_AUTHORIZATIONS,
          `Authorizations hold ${outcome.held} points; withdraw after they are captured or released`,
          { held: outcome.held },
        );
      default:
        return memberError(ErrorCode[outcome.code]);
    }
  }
}

/** Reads a member's profile once per request, however many of its fields are selected. */
function profileOf(context: RequestContext, memberId: string): Promise<MemberRecord> {
  return context.loaders.get(`profile:${memberId}`, async () => {
    const member = await context.services.accounts.profile(context.em, memberId);
    if (!member) throw new Error(`member ${memberId} of a live session does not exist`);
    return member;
  });
}
