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
    const member = await context.services.accounts.profile(context.em, context.caller.memberId);
    if (!member) return null;
    return Object.assign(new AccountView(), {
      id: toGlobalId(ACCOUNT_TYPE_NAME, member.id),
      username: member.username,
      email: member.email,
      emailVerified: member.emailVerified,
      twoFactorEnabled: member.twoFactorEnabled,
      role: member.role as AccountRole,
      createdAt: member.createdAt,
      memberId: member.id,
    });
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
