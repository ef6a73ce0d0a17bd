import { Migration20261204170000_ledger } from './migrations/Migration20261204170000_ledger';
import { Migration20261204180000_members } from './migrations/Migration20261204180000_members';
import { Migration20261204190000_money_features } from './migrations/Migration20261204190000_money_features';
import { Migration20261204200000_audit_actor_index } from './migrations/Migration20261204200000_audit_actor_index';

/**
 * Migrations in the order they run. Listing them here keeps the compiled
 * server independent of folder scanning; `npm run migration:create` writes new
 * files next to these, and each must be added to this list.
 */
export const MIGRATIONS = [
  { name: 'Migration20261204170000_ledger', class: Migration20261204170000_ledger },
  { name: 'Migration20261204180000_members', class: Migration20261204180000_members },
  {
    name: 'Migration20261204190000_money_features',
    class: Migration20261204190000_money_features,
  },
  {
    name: 'Migration20261204200000_audit_actor_index',
    class: Migration20261204200000_audit_actor_index,
  },
];
