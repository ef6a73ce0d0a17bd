import { CHARGE, chargeInput, newKey, REFUND, useHarness } from '../support/harness';

const harness = useHarness();

describe('concurrent charges', () => {
  test('20 charges of 100 on 1,000: exactly 10 succeed', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        harness().request(CHARGE, chargeInput(card!, 100), merchant.key),
      ),
    );

    const kinds = results.map((result) => result.data!.charge.__typename);
    expect(kinds.filter((kind) => kind === 'ChargeSuccess')).toHaveLength(10);
    expect(kinds.filter((kind) => kind === 'InsufficientBalanceError')).toHaveLength(10);
    for (const result of results) {
      if (result.data!.charge.__typename === 'InsufficientBalanceError') {
        expect(result.data!.charge.available).toBe(0);
      }
    }
    expect(await harness().balanceOf(card!)).toBe(0);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(1_000);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE debit_account_id = ?', [
        found!.ledgerAccountId,
      ]),
    ).toBe(10);
    const balancesAfter = results
      .filter((result) => result.data!.charge.__typename === 'ChargeSuccess')
      .map((result) => result.data!.charge.balanceAfter)
      .sort((a: number, b: number) => a - b);
    expect(balancesAfter).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  });

  test('10 charges of 600 on 1,000: exactly one succeeds', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        harness().request(CHARGE, chargeInput(card!, 600), merchant.key),
      ),
    );

    const successes = results.filter(
      (result) => result.data!.charge.__typename === 'ChargeSuccess',
    );
    expect(successes).toHaveLength(1);
    expect(results.filter((result) => result.data!.charge.available === 400)).toHaveLength(9);
    expect(await harness().balanceOf(card!)).toBe(400);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(600);
  });

  test('charges on many cards into one merchant all land', async () => {
    const merchant = await harness().createMerchant();
    const cards = await harness().issueCards(30, 500);

    const results = await Promise.all(
      cards.map((card) => harness().request(CHARGE, chargeInput(card, 500), merchant.key)),
    );

    expect(results.every((result) => result.data!.charge.__typename === 'ChargeSuccess')).toBe(
      true,
    );
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(15_000);
    for (const card of cards) expect(await harness().balanceOf(card)).toBe(0);
  });
});

describe('concurrent refunds', () => {
  test('two refunds of 400 on a charge of 600: exactly one succeeds', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const charge = await harness().request(CHARGE, chargeInput(card!, 600), merchant.key);
    const transactionId = charge.data!.charge.transaction.id;

    const results = await Promise.all(
      [1, 2].map(() =>
        harness().request(
          REFUND,
          { input: { transactionId, amount: 400, idempotencyKey: newKey('refund') } },
          merchant.key,
        ),
      ),
    );

    const kinds = results.map((result) => result.data!.refund.__typename).sort();
    expect(kinds).toEqual(['RefundExceedsChargeError', 'RefundSuccess']);
    const rejected = results.find(
      (result) => result.data!.refund.__typename === 'RefundExceedsChargeError',
    );
    expect(rejected!.data!.refund.refundable).toBe(200);
    expect(await harness().balanceOf(card!)).toBe(800);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(200);
  });

  test('ten concurrent refunds never exceed the charge', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const charge = await harness().request(CHARGE, chargeInput(card!, 600), merchant.key);
    const transactionId = charge.data!.charge.transaction.id;

    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        harness().request(
          REFUND,
          { input: { transactionId, amount: 70, idempotencyKey: newKey('refund') } },
          merchant.key,
        ),
      ),
    );

    expect(
      results.filter((result) => result.data!.refund.__typename === 'RefundSuccess'),
    ).toHaveLength(8);
    const refunded = await harness().count(
      `SELECT COALESCE(SUM(amount), 0) AS count FROM ledger_transaction WHERE kind = 'refund' AND merchant_id = ?`,
      [merchant.id],
    );
    expect(refunded).toBe(560);
    expect(await harness().balanceOf(card!)).toBe(960);
  });
});
