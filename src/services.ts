import type { MikroORM } from '@mikro-orm/postgresql';
import { AuditService } from './audit/audit.service';
import { Clock } from './config/clock';
import type { AppConfig } from './config/config';
import { EventHub, type EventTopic } from './events/event-hub';
import type { EventRelay } from './events/event-relay';
import type { LedgerEvent } from './events/ledger-event';
import { openSubscription } from './events/subscriptions';
import { LedgerCheckService } from './ledger/ledger-check.service';
import { LedgerService } from './ledger/ledger.service';
import type { Logger } from './logging/logger';
import type { MailDispatcher } from './mail/mail-dispatcher';
import type { Metrics } from './metrics/metrics';
import { MailService } from './mail/mail.service';
import { AccountService } from './members/account.service';
import { LoginService } from './members/login.service';
import { PasswordHasher } from './members/password-hasher';
import { PasswordService } from './members/password.service';
import { RegistrationService } from './members/registration.service';
import { deriveKey, SecretBox } from './members/secret-box';
import { SessionService } from './members/session.service';
import { TwoFactorService } from './members/two-factor.service';
import { WithdrawalService } from './members/withdrawal.service';
import { OperatorService } from './admin/operator.service';
import { ApiKeyService } from './merchants/api-key.service';
import { CreditService } from './merchants/credit.service';
import { AuthorizationService } from './merchants/authorization.service';
import { MerchantService } from './merchants/merchant.service';
import { PaymentService } from './merchants/payment.service';
import { CardService } from './prepaid/card.service';
import { PrepaidIdService } from './prepaid/prepaid-id.service';
import { PrepaidIdVault } from './prepaid/prepaid-id.vault';
import { RateLimits } from './rate-limit/rate-limits';
import { TransactionHistoryService } from './transactions/transaction-history.service';
import { PrepaidIdLifecycleService } from './wallets/prepaid-id-lifecycle.service';
import { TransferService } from './wallets/transfer.service';
import { WalletService } from './wallets/wallet.service';

/** The services of one process, created once and shared by every request. */
export interface Services {
  ledger: LedgerService;
  ledgerCheck: LedgerCheckService;
  prepaidIds: PrepaidIdService;
  cards: CardService;
  merchants: MerchantService;
  apiKeys: ApiKeyService;
  payments: PaymentService;
  credits: CreditService;
  transfers: TransferService;
  prepaidIdLifecycle: PrepaidIdLifecycleService;
  authorizations: AuthorizationService;
  operators: OperatorService;
  history: TransactionHistoryService;
  wallets: WalletService;
  sessions: SessionService;
  registration: RegistrationService;
  login: LoginService;
  twoFactor: TwoFactorService;
  passwords: PasswordService;
  accounts: AccountService;
  withdrawals: WithdrawalService;
  mail: MailService;
  audit: AuditService;
  limits: RateLimits;
  clock: Clock;
  config: AppConfig;
  hub: EventHub;
  /** Opens a live event subscription; `tag` groups subscriptions to close together. */
  subscribe(topic: EventTopic, tag?: string): Promise<AsyncIterableIterator<LedgerEvent>>;
}

export interface ServiceDependencies {
  config: AppConfig;
  logger: Logger;
  orm: MikroORM;
  /** Absent in the operator CLI, which delivers no events and sends no mail. */
  relay?: EventRelay;
  mailDispatcher?: MailDispatcher;
  hub?: EventHub;
  /** Absent in the operator CLI, which serves no metrics. */
  metrics?: Metrics;
}

/** Channel on which instances tell each other that sessions ended, so their subscriptions close. */
export const SESSION_ENDED_CHANNEL = 'session_ended';

export function createServices(dependencies: ServiceDependencies): Services {
  const { config, logger, relay, mailDispatcher, metrics, hub = new EventHub() } = dependencies;
  const ledger = new LedgerService({
    logger,
    onCommitted: () => relay?.committed(),
    onPosted: (kind, result) => metrics?.postingDone(kind, result),
  });
  const prepaidIds = new PrepaidIdService(
    new PrepaidIdVault(config.prepaidIdHmacKey, config.prepaidIdEncryptionKey),
  );
  const merchants = new MerchantService(ledger);
  const wallets = new WalletService(ledger, prepaidIds);
  const audit = new AuditService();
  const mail = new MailService();
  const limits = new RateLimits(config.databaseUrl!, config.rateLimits, (error) =>
    logger.warn({ err: error }, 'a rate-limit database connection failed'),
  );
  limits.onRejected = (name) => metrics?.rateLimited(name);
  const hasher = new PasswordHasher();
  const mailQueued = () => mailDispatcher?.wake();
  const clock = new Clock();

  const sessions = new SessionService({
    idleMinutes: config.sessionIdleMinutes,
    maxHours: config.sessionMaxHours,
  });
  sessions.onEnded = (sessionIds) => {
    for (const sessionId of sessionIds) {
      hub.closeTagged(`session:${sessionId}`);
      relay?.notify(SESSION_ENDED_CHANNEL, sessionId).catch((error: Error) => {
        // Other instances still close the subscription at their next session sweep.
        logger.warn({ err: error, sessionId }, 'sending the session-ended NOTIFY failed');
      });
    }
  };

  const twoFactor = new TwoFactorService({
    secrets: new SecretBox(config.totpEncryptionKey),
    recoveryKey: deriveKey(config.totpEncryptionKey, 'recovery codes'),
    hasher,
    limits,
    audit,
    clock,
  });

  const payments = new PaymentService(
    ledger,
    prepaidIds,
    merchants,
    config.maxTransactionAmount,
    clock,
  );
  const authorizations = new AuthorizationService({
    ledger,
    prepaidIds,
    merchants,
    clock,
    logger,
    maxTransactionAmount: config.maxTransactionAmount,
    holdMinutes: config.authorizationHoldMinutes,
  });
  const operators = new OperatorService({
    ledger,
    prepaidIds,
    wallets,
    merchants,
    twoFactor,
    audit,
    clock,
  });

  return {
    ledger,
    ledgerCheck: new LedgerCheckService(),
    prepaidIds,
    cards: new CardService(ledger, prepaidIds),
    merchants,
    apiKeys: new ApiKeyService(),
    payments,
    credits: new CreditService({
      ledger,
      prepaidIds,
      merchants,
      clock,
      maxTransactionAmount: config.maxTransactionAmount,
      maxWalletBalance: config.maxWalletBalance,
      limits,
    }),
    transfers: new TransferService({
      ledger,
      prepaidIds,
      wallets,
      audit,
      limits,
      clock,
      maxWalletBalance: config.maxWalletBalance,
    }),
    prepaidIdLifecycle: new PrepaidIdLifecycleService({
      ledger,
      prepaidIds,
      twoFactor,
      audit,
      clock,
      oneTimeDefaultMinutes: config.oneTimeIdDefaultMinutes,
      oneTimeMaxMinutes: config.oneTimeIdMaxMinutes,
    }),
    authorizations,
    operators,
    history: new TransactionHistoryService(),
    wallets,
    sessions,
    registration: new RegistrationService({
      hasher,
      mail,
      wallets,
      audit,
      limits,
      appUrl: config.appUrl,
      mailQueued,
    }),
    login: new LoginService({ hasher, sessions, twoFactor, limits, audit }),
    twoFactor,
    passwords: new PasswordService({
      hasher,
      sessions,
      twoFactor,
      mail,
      audit,
      limits,
      appUrl: config.appUrl,
      mailQueued,
    }),
    accounts: new AccountService(sessions, audit, wallets, twoFactor),
    withdrawals: new WithdrawalService({
      hasher,
      ledger,
      wallets,
      sessions,
      twoFactor,
      mail,
      audit,
      limits,
      mailQueued,
    }),
    mail,
    audit,
    limits,
    clock,
    config,
    hub,
    subscribe(topic, tag) {
      if (!relay) throw new Error('this process delivers no events');
      return openSubscription(hub, relay, topic, tag);
    },
  };
}
