import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { OperatorResolver } from '../admin/operator.resolver';
import { AccountResolver } from '../members/account.resolver';
import { AuthorizationResolver } from '../merchants/authorization.resolver';
import { CreditResolver } from '../merchants/credit.resolver';
import { SecurityResolver } from '../members/security.resolver';
import { SignInResolver } from '../members/sign-in.resolver';
import { MerchantResolver } from '../merchants/merchant.resolver';
import { PaymentResolver } from '../merchants/payment.resolver';
import { TransactionResolver } from '../transactions/transaction.resolver';
import { WalletMoneyResolver } from '../wallets/wallet-money.resolver';
import { WalletResolver } from '../wallets/wallet.resolver';

let schema: Promise<GraphQLSchema> | undefined;

/** Builds the schema from the type-graphql resolvers once per process. */
export function getSchema(): Promise<GraphQLSchema> {
  schema ??= buildSchema({
    resolvers: [
      PaymentResolver,
      MerchantResolver,
      SignInResolver,
      SecurityResolver,
      AccountResolver,
      WalletResolver,
      TransactionResolver,
      AuthorizationResolver,
      OperatorResolver,
      CreditResolver,
      WalletMoneyResolver,
    ],
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
