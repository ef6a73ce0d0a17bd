import { Migration } from '@mikro-orm/migrations';

/**
 * Adds what rotation, one-time IDs, two-step payments, merchant credits and
 * operator adjustments need.
 */
export class Migration20261204190000_money_features extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      ALTER TABLE wallet ADD COLUMN prepaid_id_rotated_at timestamptz;

      ALTER TABLE prepaid_id ADD COLUMN expires_at timestamptz;
      ALTER TABLE prepaid_id ADD COLUMN amount_cap bigint;
      ALTER TABLE prepaid_id ADD CONSTRAINT prepaid_id_amount_cap_positive
        CHECK (amount_cap IS NULL OR amount_cap > 0);
      ALTER TABLE prepaid_id ADD CONSTRAINT prepaid_id_one_time_expires
        CHECK ((kind = 'one_time') = (expires_at IS NOT NULL));
      ALTER TABLE prepaid_id ADD CONSTRAINT prepaid_id_cap_only_one_time
        CHECK (amount_cap IS NULL OR kind = 'one_time');

      -- A pending authorization carries the time its hold lapses.
      ALTER TABLE ledger_transaction ADD COLUMN expires_at timestamptz;
      ALTER TABLE ledger_transaction ADD CONSTRAINT ledger_transaction_expiry_only_pending
        CHECK ((status = 'pending') = (expires_at IS NOT NULL));
      -- An authorization is settled at most once: by one capture, one void or one expiry.
      CREATE UNIQUE INDEX ledger_transaction_settled_once
        ON ledger_transaction (parent_id) WHERE kind IN ('capture', 'void', 'expiry');
      CREATE INDEX ledger_transaction_pending_expiry_index
        ON ledger_transaction (expires_at) WHERE status = 'pending';
      -- The member or operator who caused a movement, where one did.
      ALTER TABLE ledger_transaction ADD COLUMN actor_member_id uuid REFERENCES member (id);

      ALTER TABLE audit_log ADD COLUMN merchant_id uuid REFERENCES merchant (id);
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      ALTER TABLE audit_log DROP COLUMN merchant_id;
      ALTER TABLE ledger_transaction DROP COLUMN actor_member_id;
      DROP INDEX ledger_transaction_pending_expiry_index;
      DROP INDEX ledger_transaction_settled_once;
      ALTER TABLE ledger_transaction DROP CONSTRAINT ledger_transaction_expiry_only_pending;
      ALTER TABLE ledger_transaction DROP COLUMN expires_at;
      ALTER TABLE prepaid_id DROP CONSTRAINT prepaid_id_cap_only_one_time;
      ALTER TABLE prepaid_id DROP CONSTRAINT prepaid_id_one_time_expires;
      ALTER TABLE prepaid_id DROP CONSTRAINT prepaid_id_amount_cap_positive;
      ALTER TABLE prepaid_id DROP COLUMN amount_cap;
      ALTER TABLE prepaid_id DROP COLUMN expires_at;
      ALTER TABLE wallet DROP COLUMN prepaid_id_rotated_at;
    `);
  }
}
