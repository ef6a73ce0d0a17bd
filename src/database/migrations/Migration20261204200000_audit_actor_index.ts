import { Migration } from '@mikro-orm/migrations';

/**
 * Indexes audit entries by actor, so that a withdrawal finds the entries of
 * the member's own actions without scanning the audit log while it holds the
 * wallet's ledger lock.
 */
export class Migration20261204200000_audit_actor_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE INDEX audit_log_actor_index ON audit_log (actor_member_id)
        WHERE actor_member_id IS NOT NULL;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP INDEX audit_log_actor_index;`);
  }
}
