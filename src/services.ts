import type { AppConfig } from './config/config';
import { EventHub, type EventTopic } from './events/event-hub';
import type { EventRelay } from './events/event-relay';
import type { LedgerEvent } from './events/ledger-event';
import { openSubscription } from './events/subscriptions';
import { LedgerCheckService } from './ledger/ledger-check.service';
import { LedgerService } from './ledger/ledger.service';
import type { Logger } from './logging/logger';
import { ApiKeyService } from './merchants/api-key.service';
import { MerchantService } from './merchants/merchant.service';
import { PaymentService } from './merchants/payment.service';
import { CardService } from './prepaid/card.service';
import { PrepaidIdService } from './prepaid/prepaid-id.service';
import { PrepaidIdVault } from './prepaid/prepaid-id.vault';
import { TransactionHistoryService } from './transactions/transaction-history.service';

/** The services of one process, created once and shared by every request. */
export interface Services {
  ledger: LedgerService;
  ledgerCheck: LedgerCheckService;
  prepaidIds: PrepaidIdService;
  cards: CardService;
  merchants: MerchantService;
  apiKeys: ApiKeyService;
  payments: PaymentService;
  history: TransactionHistoryService;
  hub: EventHub;
  /** Opens a live event subscription; `tag` groups subscriptions to close together. */
  subscribe(topic: EventTopic, tag?: string): Promise<AsyncIterableIterator<LedgerEvent>>;
}

export interface ServiceDependencies {
  config: AppConfig;
  logger: Logger;
  /** Absent in the operator CLI, which delivers no events. */
  relay?: EventRelay;
  hub?: EventHub;
}

export function createServices({ config, logger, relay, hub = new EventHub() }: ServiceDependencies): Services {
  const ledger = new LedgerService({ logger, onCommitted: () => relay?.committed() });
  const prepaidIds = new PrepaidIdService(
    new PrepaidIdVault(config.prepaidIdHmacKey, config.prepaidIdEncryptionKey),
  );
  const merchants = new MerchantService(ledger);
  return {
    ledger,
    ledgerCheck: new LedgerCheckService(),
    prepaidIds,
    cards: new CardService(ledger, prepaidIds),
    merchants,
    apiKeys: new ApiKeyService(),
    payments: new PaymentService(ledger, prepaidIds, merchants, config.maxTransactionAmount),
    history: new TransactionHistoryService(),
    hub,
    subscribe(topic, tag) {
      if (!relay) throw new Error('this process delivers no events');
      return openSubscription(hub, relay, topic, tag);
    },
  };
}
