import { LedgerAccount } from '../ledger/ledger-account.entity';
import { LedgerTransaction } from '../ledger/ledger-transaction.entity';
import { MerchantApiKey } from '../merchants/api-key.entity';
import { Merchant } from '../merchants/merchant.entity';
import { PrepaidCard, PrepaidCardBatch } from '../prepaid/prepaid-card.entity';
import { PrepaidId } from '../prepaid/prepaid-id.entity';

/** Every MikroORM entity, listed explicitly so that the build needs no folder scanning. */
export const ENTITIES = [
  Merchant,
  MerchantApiKey,
  LedgerAccount,
  LedgerTransaction,
  PrepaidId,
  PrepaidCard,
  PrepaidCardBatch,
];
