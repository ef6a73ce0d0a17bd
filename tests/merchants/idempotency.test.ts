import { CHARGE, chargeInput, newKey, REFUND, useHarness } from '../support/harness';

const harness = useHarness();

describe('idempotency keys', () => {
  test('a replay returns the same transaction and moves nothing', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = chargeInput(card!, 300);

    const first = await harness().request(CHARGE, variables, merchant.key);
    const second = await harness().request(CHARGE, variables, merchant.key);

    expect(first.data!.charge.replayed).toBe(false);
    expect(second.data!.charge.replayed).toBe(true);
    expect(second.data!.charge.transaction.id).toBe(first.data!.charge.transaction.id);
    expect(second.data!.charge.balanceAfter).toBe(700);
    expect(await harness().balanceOf(card!)).toBe(700);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(1);
  });

  test('the same key with another amount is rejected', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = chargeInput(card!, 300);
    await harness().request(CHARGE, variables, merchant.key);

    const { data } = await harness().request(
      CHARGE,
      { input: { ...variables.input, amount: 301 } },
      merchant.key,
    );

    expect(data!.charge).toMatchObject({
      __typename: 'IdempotencyKeyReusedError',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect(await harness().balanceOf(card!)).toBe(700);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(1);
  });

  test('the same key with another card is rejected', async () => {
    const merchant = await harness().createMerchant();
    const [card, other] = await harness().issueCards(2, 1_000);
    const variables = chargeInput(card!, 300);
    await harness().request(CHARGE, variables, merchant.key);

    const { data } = await harness().request(
      CHARGE,
      { input: { ...variables.input, prepaidId: other } },
      merchant.key,
    );

    expect(data!.charge.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await harness().balanceOf(other!)).toBe(1_000);
  });

  test('10 concurrent requests with one key make one transaction', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = chargeInput(card!, 100);

    const results = await Promise.all(
      Array.from({ length: 10 }, () => harness().request(CHARGE, variables, merchant.key)),
    );

    const ids = new Set(results.map((result) => result.data!.charge.transaction.id));
    expect(ids.size).toBe(1);
    expect(results.filter((result) => result.data!.charge.replayed === false)).toHaveLength(1);
    expect(await harness().balanceOf(card!)).toBe(900);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(1);
  });

  test('concurrent requests with one key and different cards make one transaction', async () => {
    const merchant = await harness().createMerchant();
    const cards = await harness().issueCards(6, 1_000);
    const key = newKey('shared');

    const results = await Promise.all(
      cards.map((card) =>
        harness().request(
          CHARGE,
          chargeInput(card, 100, { idempotencyKey: key, orderReference: 'same' }),
          merchant.key,
        ),
      ),
    );

    const kinds = results.map((result) => result.data!.charge.__typename);
    expect(kinds.filter((kind) => kind === 'ChargeSuccess')).toHaveLength(1);
    expect(kinds.filter((kind) => kind === 'IdempotencyKeyReusedError')).toHaveLength(5);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(100);
  });

  test('another merchant may use the same key', async () => {
    const first = await harness().createMerchant('First');
    const second = await harness().createMerchant('Second');
    const [card] = await harness().issueCards(1, 1_000);
    const variables = chargeInput(card!, 200);

    const one = await harness().request(CHARGE, variables, first.key);
    const two = await harness().request(CHARGE, variables, second.key);

    expect(one.data!.charge.replayed).toBe(false);
    expect(two.data!.charge.replayed).toBe(false);
    expect(two.data!.charge.transaction.id).not.toBe(one.data!.charge.transaction.id);
    expect(await harness().balanceOf(card!)).toBe(600);
  });

  test('a replay returns the first result after the card was blocked', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = chargeInput(card!, 300);
    const first = await harness().request(CHARGE, variables, merchant.key);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'blocked');

    const replay = await harness().request(CHARGE, variables, merchant.key);

    expect(replay.data!.charge.transaction.id).toBe(first.data!.charge.transaction.id);
    expect(replay.data!.charge.replayed).toBe(true);
  });

  test('a refund replay moves nothing and a key of a charge is not a refund key', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const chargeVariables = chargeInput(card!, 500);
    const charge = await harness().request(CHARGE, chargeVariables, merchant.key);
    const refundVariables = {
      input: {
        transactionId: charge.data!.charge.transaction.id,
        amount: 200,
        idempotencyKey: newKey(),
      },
    };

    const first = await harness().request(REFUND, refundVariables, merchant.key);
    const replay = await harness().request(REFUND, refundVariables, merchant.key);
    const crossed = await harness().request(
      REFUND,
      { input: { ...refundVariables.input, idempotencyKey: chargeVariables.input.idempotencyKey } },
      merchant.key,
    );

    expect(replay.data!.refund.transaction.id).toBe(first.data!.refund.transaction.id);
    expect(replay.data!.refund.replayed).toBe(true);
    expect(replay.data!.refund.refundableRemaining).toBe(300);
    expect(crossed.data!.refund.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await harness().balanceOf(card!)).toBe(700);
  });

  test('a failed charge does not consume its key', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 100);
    const variables = chargeInput(card!, 300);

    const failed = await harness().request(CHARGE, variables, merchant.key);
    const again = await harness().request(CHARGE, variables, merchant.key);

    expect(failed.data!.charge.code).toBe('INSUFFICIENT_BALANCE');
    expect(again.data!.charge.code).toBe('INSUFFICIENT_BALANCE');
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(0);
  });

  test('rejects a malformed key', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    for (const idempotencyKey of ['', 'has space', 'x'.repeat(256)]) {
      const { errors } = await harness().request(
        CHARGE,
        chargeInput(card!, 100, { idempotencyKey }),
        merchant.key,
      );
      expect(errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    }
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });
});
