import type { AuditService } from '../audit/audit.service';
import type { Clock } from '../config/clock';
import type { LedgerService } from '../ledger/ledger.service';
import type { MerchantService } from '../merchants/merchant.service';
import type { TwoFactorService } from '../members/two-factor.service';
import type { PrepaidIdService } from '../prepaid/prepaid-id.service';
import type { WalletService } from '../wallets/wallet.service';

export interface OperatorDependencies {
  ledger: LedgerService;
  prepaidIds: PrepaidIdService;
  wallets: WalletService;
  merchants: MerchantService;
  twoFactor: TwoFactorService;
  audit: AuditService;
  clock: Clock;
}

/** Operators' work: blocks, adjustments, credit limits and reports. */
export class OperatorService {
  constructor(private readonly deps: OperatorDependencies) {}
}
