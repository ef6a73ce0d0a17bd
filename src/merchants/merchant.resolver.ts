import { Arg, Ctx, FieldResolver, Int, Query, Resolver, Root, Subscription } from 'type-graphql';
import { sqlFor } from '../database/sql';
import { requireMerchant, type RequestContext } from '../graphql/context';
import { decodeTimeCursor, pageSize, toConnection, toGlobalId } from '../graphql/relay';
import type { LedgerEvent } from '../events/ledger-event';
import { toTransactionView } from '../transactions/transaction.type';
import { MerchantTransactionEvent, MerchantView, TransactionConnection } from './merchant.types';

@Resolver(() => MerchantView)
export class MerchantResolver {
  @Query(() => MerchantView, { description: 'The merchant of the calling API key.' })
  async merchant(@Ctx() context: RequestContext): Promise<MerchantView> {
    const caller = requireMerchant(context, 'read');
    const sql = sqlFor(context.em);
    const merchant = await context.services.merchants.find(sql, caller.merchantId);
    if (!merchant)
      throw new Error(`merchant ${caller.merchantId} of an authenticated key does not exist`);
    const balance = await sql.one<{ balance_posted: string }>(
      'SELECT balance_posted FROM ledger_account WHERE id = ?',
      [merchant.settlementAccountId],
    );
    return Object.assign(new MerchantView(), {
      id: toGlobalId('Merchant', merchant.id),
      name: merchant.name,
      settlementBalance: Number(balance!.balance_posted),
      creditLimit: merchant.creditLimit,
      settlementAccountId: merchant.settlementAccountId,
    });
  }

  @FieldResolver(() => TransactionConnection, {
    description: "The merchant's transactions, newest first.",
  })
  async transactions(
    @Root() merchant: MerchantView,
    @Ctx() context: RequestContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ) {
    const caller = requireMerchant(context, 'read');
    const size = pageSize(first);
    const cursor = decodeTimeCursor(after);
    const rows = await context.services.history.forMerchant(
      sqlFor(context.em),
      caller.merchantId,
      size + 1,
      cursor,
    );
    return toConnection(rows, size, cursor !== undefined, (row) =>
      toTransactionView(row, merchant.settlementAccountId),
    );
  }

  @Subscription(() => MerchantTransactionEvent, {
    description:
      "Each of the calling merchant's transactions, once, after it committed, in commit order.",
    subscribe: async ({ context }) => {
      const ctx = context as RequestContext;
      const caller = requireMerchant(ctx, 'read');
      return ctx.services.subscribe(
        { merchantId: caller.merchantId },
        `api-key:${caller.apiKeyId}`,
      );
    },
  })
  merchantTransactionPosted(@Root() event: LedgerEvent): MerchantTransactionEvent {
    const settlement = event.balances.find(
      (balance) =>
        balance.kind === 'merchant_settlement' && balance.merchantId === event.merchantId,
    );
    if (!settlement) throw new Error(`event ${event.id} has no settlement account of its merchant`);
    return Object.assign(new MerchantTransactionEvent(), {
      transaction: toTransactionView(event.transaction, settlement.accountId),
      settlementBalance: settlement.posted,
    });
  }
}
