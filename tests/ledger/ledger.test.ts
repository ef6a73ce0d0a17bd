import { sqlFor } from '../../src/database/sql';
import { CHARGE, chargeInput, newKey, REFUND, useHarness } from '../support/harness';

const harness = useHarness();

async function cardAccount(digits: string): Promise<string> {
  const found = await harness().services.prepaidIds.resolve(harness().sql(), digits);
  return found!.ledgerAccountId;
}

describe('database constraints', () => {
  test('reject a negative card balance whatever the code does', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);

    await expect(
      harness()
        .sql()
        .query('UPDATE ledger_account SET balance_posted = -1 WHERE id = ?', [accountId]),
    ).rejects.toMatchObject({
      code: '23514',
      constraint: 'ledger_account_stored_value_not_negative',
    });
    await expect(
      harness()
        .sql()
        .query('UPDATE ledger_account SET balance_held = 101 WHERE id = ?', [accountId]),
    ).rejects.toMatchObject({ code: '23514' });
    expect(await harness().balanceOf(card!)).toBe(100);
  });

  test('reject changing or deleting a ledger transaction', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);
    const row = await harness()
      .sql()
      .one<{ id: string }>('SELECT id FROM ledger_transaction WHERE credit_account_id = ?', [
        accountId,
      ]);

    await expect(
      harness().sql().query('UPDATE ledger_transaction SET amount = 1 WHERE id = ?', [row!.id]),
    ).rejects.toThrow(/immutable/);
    await expect(
      harness().sql().query('DELETE FROM ledger_transaction WHERE id = ?', [row!.id]),
    ).rejects.toThrow(/immutable/);
  });

  test('reject a zero amount and a transaction on one account', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);
    const insert = (amount: number, debit: string) =>
      harness()
        .sql()
        .query(
          `INSERT INTO ledger_transaction (kind, status, debit_account_id, credit_account_id, amount,
           debit_balance_after, credit_balance_after) VALUES ('adjustment', 'posted', ?, ?, ?, 0, 0)`,
          [debit, accountId, amount],
        );

    await expect(insert(0, '1')).rejects.toMatchObject({
      constraint: 'ledger_transaction_amount_positive',
    });
    await expect(insert(5, accountId)).rejects.toMatchObject({
      constraint: 'ledger_transaction_accounts_differ',
    });
  });
});

describe('LedgerService', () => {
  test('takes every account lock before the transaction gets an xid', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);
    const adjustment = await harness().services.ledger.operatorAccountId(
      harness().sql(),
      'adjustment',
    );
    let xidInGuard: unknown = 'not called';

    const result = await harness().services.ledger.post(harness().em(), {
      kind: 'adjustment',
      debitAccountId: adjustment,
      creditAccountId: accountId,
      amount: 5,
      description: 'xid probe',
      guard: async (sql) => {
        const row = await sql.one<{ xid: string | null }>(
          'SELECT pg_current_xact_id_if_assigned()::text AS xid',
        );
        xidInGuard = row!.xid;
        return undefined;
      },
    });

    expect(result.ok).toBe(true);
    expect(xidInGuard).toBeNull();
    expect(await harness().balanceOf(card!)).toBe(105);
  });

  test('rolls back the writes of a guard that rejects', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    const adjustment = await harness().services.ledger.operatorAccountId(
      harness().sql(),
      'adjustment',
    );

    const result = await harness().services.ledger.post(harness().em(), {
      kind: 'adjustment',
      debitAccountId: accountId,
      creditAccountId: adjustment,
      amount: 5,
      guard: async (sql) => {
        await sql.query(`UPDATE prepaid_id SET status = 'spent' WHERE id = ?`, [found!.id]);
        return { code: 'REJECTED', reason: 'probe' };
      },
    });

    expect(result).toEqual({ ok: false, code: 'REJECTED', reason: 'probe' });
    const after = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    expect(after!.status).toBe('active');
    expect(await harness().balanceOf(card!)).toBe(100);
  });

  test('rejects invalid postings before touching the database', async () => {
    const [card] = await harness().issueCards(1, 100);
    const accountId = await cardAccount(card!);
    const ledger = harness().services.ledger;

    await expect(
      ledger.post(harness().em(), {
        kind: 'adjustment',
        debitAccountId: '1',
        creditAccountId: accountId,
        amount: 0,
      }),
    ).rejects.toThrow(RangeError);
    await expect(
      ledger.post(harness().em(), {
        kind: 'adjustment',
        debitAccountId: accountId,
        creditAccountId: accountId,
        amount: 1,
      }),
    ).rejects.toThrow(RangeError);
    await expect(
      ledger.post(harness().em(), {
        kind: 'adjustment',
        debitAccountId: '1',
        creditAccountId: accountId,
        amount: 1.5,
      }),
    ).rejects.toThrow(RangeError);
  });

  test('charges and refunds in both directions never deadlock', async () => {
    const merchant = await harness().createMerchant();
    const cards = await harness().issueCards(4, 10_000);
    const charges = await Promise.all(
      cards.map((card) => harness().request(CHARGE, chargeInput(card, 5_000), merchant.key)),
    );
    const chargeIds = charges.map((result) => result.data!.charge.transaction.id as string);

    const work = [];
    for (let round = 0; round < 10; round++) {
      for (let index = 0; index < cards.length; index++) {
        work.push(harness().request(CHARGE, chargeInput(cards[index]!, 10), merchant.key));
        work.push(
          harness().request(
            REFUND,
            { input: { transactionId: chargeIds[index], amount: 10, idempotencyKey: newKey('r') } },
            merchant.key,
          ),
        );
      }
    }
    const results = await Promise.all(work);

    expect(results.every((result) => result.errors === undefined)).toBe(true);
    for (const card of cards) expect(await harness().balanceOf(card)).toBe(5_000);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(20_000);
  });
});

describe('ledger check', () => {
  test('reports balanced with exact totals', async () => {
    await harness().issueCards(3, 700);

    const report = await harness().ledgerCheck();

    expect(report.balanced).toBe(true);
    expect(report.totalPosted).toBe(0);
    expect(report.mismatches).toEqual([]);
    expect(report.accountCount).toBe(await harness().count('SELECT count(*) FROM ledger_account'));
  });

  test('lists an account changed outside the ledger', async () => {
    const [card] = await harness().issueCards(1, 700);
    const accountId = await cardAccount(card!);
    const em = harness().em();
    await sqlFor(em).query(
      'UPDATE ledger_account SET balance_posted = balance_posted + 50 WHERE id = ?',
      [accountId],
    );

    const report = await harness().ledgerCheck();

    await sqlFor(em).query(
      'UPDATE ledger_account SET balance_posted = balance_posted - 50 WHERE id = ?',
      [accountId],
    );
    expect(report.balanced).toBe(false);
    expect(report.totalPosted).toBe(50);
    expect(report.mismatches).toEqual([
      {
        accountId,
        kind: 'card',
        balancePosted: 750,
        expectedPosted: 700,
        balanceHeld: 0,
        expectedHeld: 0,
      },
    ]);
  });
});
