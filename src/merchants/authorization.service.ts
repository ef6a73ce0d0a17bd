import type { Clock } from '../config/clock';
import type { LedgerService } from '../ledger/ledger.service';
import type { Logger } from '../logging/logger';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { MerchantService } from './merchant.service';

export interface AuthorizationDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  merchants: MerchantService;
  clock: Clock;
  logger: Logger;
  maxTransactionAmount: number;
  holdMinutes: number;
}

/** Two-step payments: authorize (hold), capture, void, and expiry of holds. */
export class AuthorizationService {
  constructor(private readonly deps: AuthorizationDependencies) {}
}
