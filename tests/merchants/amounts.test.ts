import { CHARGE, chargeInput, useHarness } from '../support/harness';

const harness = useHarness();

describe('Points amounts', () => {
  test.each([
    ['negative', -500, 'BAD_USER_INPUT'],
    ['zero', 0, 'BAD_USER_INPUT'],
    ['fractional', 100.5, 'BAD_USER_INPUT'],
    ['a string', '100', 'BAD_USER_INPUT'],
    ['2^53', 2 ** 53, 'BAD_USER_INPUT'],
  ])('rejects %s in a variable', async (_name, amount, code) => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data, errors } = await harness().request(
      CHARGE,
      chargeInput(card!, amount),
      merchant.key,
    );

    expect(data?.charge ?? null).toBeNull();
    expect(errors![0]!.extensions!.code).toBe(code);
    expect(await harness().balanceOf(card!)).toBe(1_000);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(0);
  });

  test('rejects 2^31 as over the maximum amount', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data } = await harness().request(CHARGE, chargeInput(card!, 2 ** 31), merchant.key);

    expect(data!.charge.code).toBe('AMOUNT_LIMIT_EXCEEDED');
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test.each([
    ['negative', '-500'],
    ['zero', '0'],
    ['fractional', '100.5'],
    ['a string', '"100"'],
    ['2^53', String(2 ** 53)],
    ['beyond 64 bits', '123456789012345678901234567890'],
  ])('rejects %s as a literal', async (_name, literal) => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const query = `mutation { charge(input: { prepaidId: "${card}", amount: ${literal}, idempotencyKey: "lit-${Date.now()}", orderReference: "o" }) { __typename } }`;

    const { errors } = await harness().request(query, {}, merchant.key);

    expect(['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED']).toContain(errors![0]!.extensions!.code);
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });
});
