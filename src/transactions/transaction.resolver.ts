import DataLoader from 'dataloader';
import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { arrayLiteral, sqlFor } from '../database/sql';
import type { RequestContext } from '../graphql/context';
import { TransactionView } from './transaction.type';

/** Loads merchant names by id in one query per request, however many transactions a page lists. */
function merchantNames(context: RequestContext): DataLoader<string, string | null> {
  return context.loaders.get(
    'merchantNames',
    () =>
      new DataLoader<string, string | null>(async (ids) => {
        const rows = await sqlFor(context.em).query<{ id: string; name: string }>(
          'SELECT id, name FROM merchant WHERE id = ANY(?::uuid[])',
          [arrayLiteral(ids)],
        );
        const byId = new Map(rows.map((row) => [row.id, row.name]));
        return ids.map((id) => byId.get(id) ?? null);
      }),
  );
}

@Resolver(() => TransactionView)
export class TransactionResolver {
  @FieldResolver(() => String, {
    nullable: true,
    description: 'The merchant on the other side, if any.',
  })
  async merchantName(
    @Root() transaction: TransactionView,
    @Ctx() context: RequestContext,
  ): Promise<string | null> {
    const merchantId = transaction.record.merchantId;
    return merchantId ? merchantNames(context).load(merchantId) : null;
  }
}
