import { CHARGE, chargeInput, newKey, useHarness } from '../support/harness';
import { signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({ MAX_WALLET_BALANCE: '10000' }, { smtp: true });

const CREDIT = `
  mutation Credit($input: CreditPointsInput!) {
    creditPoints(input: $input) {
      __typename
      ... on CreditSuccess { replayed settlementBalanceAfter transaction { kind amount direction balanceAfter } }
      ... on UserError { code message }
      ... on CreditLimitExceededError { available }
      ... on WalletBalanceLimitExceededError { maximum }
    }
  }`;

async function wallet(label: string) {
  const member = await signUp(harness(), label);
  return { member, prepaidId: await walletPrepaidId(harness(), member.sessionToken) };
}

function creditInput(prepaidId: string, amount: number, extra: Record<string, unknown> = {}) {
  return { input: { prepaidId, amount, idempotencyKey: newKey('credit'), ...extra } };
}

/** A merchant that has earned `earned` points from card charges. */
async function merchantWithEarnings(earned: number) {
  const merchant = await harness().createMerchant();
  if (earned > 0) {
    const [card] = await harness().issueCards(1, earned);
    await harness().request(CHARGE, chargeInput(card!, earned), merchant.key);
  }
  return merchant;
}

describe('creditPoints', () => {
  test('pays into a wallet from what the merchant earned', async () => {
    const merchant = await merchantWithEarnings(1_000);
    const { prepaidId } = await wallet('earned');

    const { data } = await harness().request(CREDIT, creditInput(prepaidId, 400), merchant.key);

    expect(data!.creditPoints).toMatchObject({
      __typename: 'CreditSuccess',
      settlementBalanceAfter: 600,
      transaction: { kind: 'CREDIT', amount: 400, direction: 'DEBIT', balanceAfter: 600 },
    });
    expect(await harness().balanceOf(prepaidId)).toBe(400);
  });

  test('stops at the credit limit, 0 by default', async () => {
    const merchant = await merchantWithEarnings(300);
    const { prepaidId } = await wallet('limit');

    const beyond = await harness().request(CREDIT, creditInput(prepaidId, 301), merchant.key);
    await harness()
      .sql()
      .query('UPDATE merchant SET credit_limit = 200 WHERE id = ?', [merchant.id]);
    const within = await harness().request(CREDIT, creditInput(prepaidId, 500), merchant.key);
    const over = await harness().request(CREDIT, creditInput(prepaidId, 1), merchant.key);

    expect(beyond.data!.creditPoints).toMatchObject({
      code: 'CREDIT_LIMIT_EXCEEDED',
      available: 300,
    });
    expect(within.data!.creditPoints).toMatchObject({
      __typename: 'CreditSuccess',
      settlementBalanceAfter: -200,
    });
    expect(over.data!.creditPoints).toMatchObject({ code: 'CREDIT_LIMIT_EXCEEDED', available: 0 });
    expect(await harness().balanceOf(prepaidId)).toBe(500);
  });

  test('concurrent credits never pass the limit', async () => {
    const merchant = await merchantWithEarnings(1_000);
    const { prepaidId } = await wallet('concurrent');

    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        harness().request(CREDIT, creditInput(prepaidId, 150), merchant.key),
      ),
    );

    expect(
      results.filter((result) => result.data!.creditPoints.__typename === 'CreditSuccess'),
    ).toHaveLength(6);
    expect(await harness().balanceOf(prepaidId)).toBe(900);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(100);
  });

  test('keeps the wallet within the maximum balance without showing it', async () => {
    const merchant = await merchantWithEarnings(20_000);
    const { prepaidId } = await wallet('maximum');
    await harness().request(CREDIT, creditInput(prepaidId, 9_000), merchant.key);

    const { data } = await harness().request(CREDIT, creditInput(prepaidId, 1_001), merchant.key);

    expect(data!.creditPoints).toMatchObject({
      code: 'WALLET_BALANCE_LIMIT_EXCEEDED',
      maximum: 10_000,
    });
    expect(JSON.stringify(data)).not.toContain('9000');
    expect(await harness().balanceOf(prepaidId)).toBe(9_000);
  });

  test('is idempotent like a charge', async () => {
    const merchant = await merchantWithEarnings(1_000);
    const { prepaidId } = await wallet('idempotent');
    const variables = creditInput(prepaidId, 100);

    const first = await harness().request(CREDIT, variables, merchant.key);
    const replay = await harness().request(CREDIT, variables, merchant.key);
    const changed = await harness().request(
      CREDIT,
      { input: { ...variables.input, amount: 101 } },
      merchant.key,
    );

    expect(first.data!.creditPoints.replayed).toBe(false);
    expect(replay.data!.creditPoints.replayed).toBe(true);
    expect(changed.data!.creditPoints.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await harness().balanceOf(prepaidId)).toBe(100);
  });

  test('reaches wallet IDs only', async () => {
    const merchant = await merchantWithEarnings(1_000);
    const { member } = await wallet('targets');
    const [card] = await harness().issueCards(1, 100);
    const oneTime = await harness().request(
      'mutation { createOneTimePrepaidId(input: {}) { ... on OneTimePrepaidIdCreated { prepaidId } } }',
      {},
      member.sessionToken,
    );

    for (const prepaidId of [
      card!,
      oneTime.data!.createOneTimePrepaidId.prepaidId,
      '4111111111111111',
    ]) {
      const { data } = await harness().request(CREDIT, creditInput(prepaidId, 10), merchant.key);
      expect(data!.creditPoints.code).toBe('INVALID_PREPAID_ID');
    }
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(1_000);
  });

  test('needs the credit scope', async () => {
    const merchant = await merchantWithEarnings(100);
    const chargeOnly = await harness().services.apiKeys.create(
      harness().sql(),
      merchant.id,
      'charge only',
      ['charge'],
    );
    const { prepaidId } = await wallet('scope');

    const { errors } = await harness().request(CREDIT, creditInput(prepaidId, 10), chargeOnly.key);

    expect(errors![0]!.extensions!.code).toBe('FORBIDDEN');
  });
});

describe('prepaidBalance inquiry', () => {
  test('answers anonymous callers, limited per IP with each alias counted', async () => {
    const [card] = await harness().issueCards(1, 700);
    const aliases = Array.from(
      { length: 25 },
      (_, index) => `b${index}: prepaidBalance(prepaidId: "${card}") { valid balance }`,
    ).join(' ');

    const responses = [];
    for (let round = 0; round < 3; round++)
      responses.push(await harness().request(`{ ${aliases} }`));

    const answered = responses.flatMap((response) =>
      Object.values(response.data ?? {}).filter((value) => value !== null),
    );
    const limited = responses.flatMap((response) => response.errors ?? []);
    expect(answered).toHaveLength(60);
    expect(answered[0]).toEqual({ valid: true, balance: 700 });
    expect(limited).toHaveLength(15);
    expect(limited.every((error) => error.extensions!.code === 'RATE_LIMITED')).toBe(true);
  });
});
