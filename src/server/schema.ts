import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { MerchantResolver } from '../merchants/merchant.resolver';
import { PaymentResolver } from '../merchants/payment.resolver';

let schema: Promise<GraphQLSchema> | undefined;

/** Builds the schema from the type-graphql resolvers once per process. */
export function getSchema(): Promise<GraphQLSchema> {
  schema ??= buildSchema({
    resolvers: [PaymentResolver, MerchantResolver],
    // Input checks live in the resolvers and services; class-validator is not used.
    validate: false,
    // Every subscription supplies its own `subscribe` function backed by the
    // event outbox, but type-graphql insists on a PubSub for any subscription.
    pubSub: {
      publish() {
        throw new Error('subscriptions are fed by the event outbox, not by PubSub');
      },
      subscribe() {
        throw new Error('subscriptions are fed by the event outbox, not by PubSub');
      },
    },
  });
  return schema;
}
