import { Arg, Ctx, FieldResolver, Int, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { sqlFor } from '../database/sql';
import type { LedgerEvent } from '../events/ledger-event';
import { requireMember, type RequestContext } from '../graphql/context';
import { ErrorCode } from '../graphql/errors';
import { decodeTimeCursor, pageSize, toConnection, toGlobalId } from '../graphql/relay';
import { memberError } from '../members/member-errors.types';
import { PrepaidIdRevealed, RevealPrepaidIdResult } from '../members/member.types';
import { maskPrepaidId } from '../prepaid/prepaid-id';
import { toTransactionView } from '../transactions/transaction.type';
import type { WalletView as WalletRecord } from './wallet.service';
import {
  BalanceChangedEvent,
  WalletHistoryConnection,
  WalletStatusValue,
  WalletView,
  WALLET_TYPE_NAME,
} from './wallet.types';

/** Maps a wallet record to its GraphQL object. */
export function toWalletView(wallet: WalletRecord): WalletView {
  return Object.assign(new WalletView(), {
    id: toGlobalId(WALLET_TYPE_NAME, wallet.id),
    status: wallet.status as WalletStatusValue,
    prepaidId: maskPrepaidId(wallet.prepaidIdLastDigits),
    canPay: wallet.status === 'active' && wallet.prepaidIdStatus === 'active',
    balancePosted: wallet.balancePosted,
    balanceHeld: wallet.balanceHeld,
    balanceAvailable: wallet.balancePosted - wallet.balanceHeld,
    ledgerAccountId: wallet.ledgerAccountId,
    prepaidIdRotatedAt: wallet.prepaidIdRotatedAt,
  });
}

@Resolver(() => WalletView)
export class WalletResolver {
  @FieldResolver(() => WalletHistoryConnection, {
    description: 'Transactions of the wallet, newest first.',
  })
  async history(
    @Root() wallet: WalletView,
    @Ctx() context: RequestContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ) {
    requireMember(context);
    const size = pageSize(first);
    const cursor = decodeTimeCursor(after);
    const rows = await context.services.history.forAccount(
      sqlFor(context.em),
      wallet.ledgerAccountId,
      size + 1,
      cursor,
    );
    return toConnection(rows, size, cursor !== undefined, (row) =>
      toTransactionView(row, wallet.ledgerAccountId),
    );
  }

  @Mutation(() => RevealPrepaidIdResult, {
    nullable: true,
    description:
      'Shows the full wallet prepaid ID; needs a fresh code when two-factor authentication is on.',
  })
  async revealPrepaidId(
    @Ctx() context: RequestContext,
    @Arg('twoFactorCode', () => String, { nullable: true }) twoFactorCode?: string | null,
  ): Promise<typeof RevealPrepaidIdResult> {
    const caller = requireMember(context);
    const outcome = await context.services.accounts.revealPrepaidId(
      context.em,
      caller.memberId,
      twoFactorCode ?? null,
      context.ip,
    );
    if (outcome.ok) return Object.assign(new PrepaidIdRevealed(), { prepaidId: outcome.prepaidId });
    return memberError(ErrorCode[outcome.code]);
  }

  @Subscription(() => BalanceChangedEvent, {
    description: "Each committed change of the signed-in member's wallet, once, in commit order.",
    subscribe: async ({ context }) => {
      const ctx = context as RequestContext;
      const caller = requireMember(ctx);
      const wallet = await ctx.services.wallets.findByMember(sqlFor(ctx.em), caller.memberId);
      if (!wallet) throw new Error(`member ${caller.memberId} has no wallet`);
      return ctx.services.subscribe(
        { accountId: wallet.ledgerAccountId },
        `session:${caller.sessionId}`,
      );
    },
  })
  balanceChanged(@Root() event: LedgerEvent): BalanceChangedEvent {
    // The subscription's topic is the wallet's account, so it is one of the two sides.
    const walletSide = event.balances.find((balance) => balance.kind === 'wallet')!;
    return Object.assign(new BalanceChangedEvent(), {
      balancePosted: walletSide.posted,
      balanceHeld: walletSide.held,
      balanceAvailable: walletSide.posted - walletSide.held,
      transaction: toTransactionView(event.transaction, walletSide.accountId),
    });
  }
}
