import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../../src/config/config';
import { ormOptions } from '../../src/database/orm-options';
import { arrayLiteral, sqlFor } from '../../src/database/sql';
import { LedgerCheckService } from '../../src/ledger/ledger-check.service';
import { PrepaidIdService } from '../../src/prepaid/prepaid-id.service';
import { PrepaidIdVault } from '../../src/prepaid/prepaid-id.vault';
import type { BankWorld, Expectation, WorkloadLog } from './bank-workload';

export interface Balances {
  posted: Map<string, number>;
  held: Map<string, number>;
}

/** Reads the posted and held balance of every card, wallet and merchant of the world. */
export async function readBalances(databaseUrl: string, world: BankWorld): Promise<Balances> {
  const config = loadConfig({ DATABASE_URL: databaseUrl });
  const orm = await MikroORM.init(ormOptions({ databaseUrl, poolMax: 2 }));
  try {
    const sql = sqlFor(orm.em.fork());
    const prepaidIds = new PrepaidIdService(
      new PrepaidIdVault(config.prepaidIdHmacKey, config.prepaidIdEncryptionKey),
    );
    const balances: Balances = { posted: new Map(), held: new Map() };
    const read = async (key: string, accountId: string) => {
      const row = await sql.one<{ balance_posted: string; balance_held: string }>(
        'SELECT balance_posted, balance_held FROM ledger_account WHERE id = ?',
        [accountId],
      );
      balances.posted.set(key, Number(row!.balance_posted));
      balances.held.set(key, Number(row!.balance_held));
    };
    for (const digits of [...world.cards, ...world.members.map((member) => member.wallet)]) {
      const found = await prepaidIds.resolve(sql, digits);
      await read(digits, found!.ledgerAccountId);
    }
    for (const merchant of world.merchants) {
      const row = await sql.one<{ id: string }>(
        'SELECT id FROM ledger_account WHERE merchant_id = ?',
        [merchant.id],
      );
      await read(`merchant:${merchant.id}`, row!.id);
    }
    return balances;
  } finally {
    await orm.close();
  }
}

export interface Verdict {
  figures: Record<string, number | string | boolean>;
  violations: string[];
}

/**
 * Checks a finished run: the ledger balances, no stored-value balance is
 * negative, every acknowledged transaction is in the ledger exactly once and
 * nothing else is, no idempotency key moved money twice, and every balance
 * equals its starting value plus what the acknowledged operations imply.
 */
export async function verify(
  databaseUrl: string,
  world: BankWorld,
  before: Balances,
  expectation: Expectation,
  log: WorkloadLog,
  retriedKeys: Set<string>,
): Promise<Verdict> {
  const violations: string[] = [];
  const orm = await MikroORM.init(ormOptions({ databaseUrl, poolMax: 2 }));
  const figures: Verdict['figures'] = {};
  try {
    const sql = sqlFor(orm.em.fork());
    const report = await new LedgerCheckService().check(orm.em.fork());
    figures.ledgerBalanced = report.balanced;
    figures.ledgerTransactions = report.transactionCount;
    if (!report.balanced)
      violations.push(`ledger does not balance: ${JSON.stringify(report.mismatches.slice(0, 5))}`);

    const negative = await sql.one<{ count: string }>(
      `SELECT count(*) FROM ledger_account
        WHERE kind IN ('wallet', 'card') AND (balance_posted < 0 OR balance_posted - balance_held < 0)`,
    );
    figures.negativeBalances = Number(negative!.count);
    if (figures.negativeBalances > 0)
      violations.push(`${figures.negativeBalances} wallet or card balances below zero`);

    const ids = log.acknowledged.map((entry) => entry.id);
    const found = ids.length
      ? await sql.query<{ id: string }>(
          'SELECT id FROM ledger_transaction WHERE id = ANY(?::uuid[])',
          [arrayLiteral(ids)],
        )
      : [];
    figures.acknowledged = ids.length;
    figures.acknowledgedFound = found.length;
    if (found.length !== new Set(ids).size)
      violations.push(`${ids.length - found.length} acknowledged transactions missing`);
    if (new Set(ids).size !== ids.length)
      violations.push('an acknowledged transaction was acknowledged twice');

    // Every transaction of the workload carries one of its keys.
    const keyed = await sql.one<{ count: string }>(
      `SELECT count(*) FROM ledger_transaction WHERE idempotency_key LIKE 'client%'`,
    );
    figures.keyedTransactions = Number(keyed!.count);
    if (figures.keyedTransactions !== ids.length) {
      violations.push(
        `${figures.keyedTransactions} keyed transactions in the ledger, ${ids.length} acknowledged`,
      );
    }
    const twice = await sql.one<{ count: string }>(
      `SELECT count(*) FROM (SELECT idempotency_scope, idempotency_key FROM ledger_transaction
        WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) AS repeated`,
    );
    figures.retriedKeys = retriedKeys.size;
    figures.keysWithTwoTransactions = Number(twice!.count);
    if (figures.keysWithTwoTransactions > 0)
      violations.push(`${figures.keysWithTwoTransactions} keys moved money twice`);
  } finally {
    await orm.close();
  }

  const after = await readBalances(databaseUrl, world);
  let mismatched = 0;
  for (const [key, value] of after.posted) {
    const expected = (before.posted.get(key) ?? 0) + (expectation.posted.get(key) ?? 0);
    const expectedHeld = (before.held.get(key) ?? 0) + (expectation.held.get(key) ?? 0);
    if (value !== expected || after.held.get(key) !== expectedHeld) {
      mismatched++;
      if (mismatched <= 5) {
        violations.push(
          `${key}: posted ${value} held ${after.held.get(key)}, expected ${expected} and ${expectedHeld}`,
        );
      }
    }
  }
  figures.accountsChecked = after.posted.size;
  figures.accountsMismatched = mismatched;
  return { figures, violations };
}
