import { CHARGE, chargeInput, newKey, REFUND, useHarness, apiKeyPrefix } from '../support/harness';

const harness = useHarness();

const BALANCE = `query Balance($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;
const PAGE = `
  query Page($first: Int, $after: String) {
    merchant {
      settlementBalance
      transactions(first: $first, after: $after) {
        edges { cursor node { id kind amount direction balanceAfter orderReference } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }`;

describe('charge', () => {
  test('moves the amount from card to merchant', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data, errors } = await harness().request(
      CHARGE,
      chargeInput(card!, 300, { orderReference: 'A-1' }),
      merchant.key,
    );

    expect(errors).toBeUndefined();
    expect(data!.charge.__typename).toBe('ChargeSuccess');
    expect(data!.charge.balanceAfter).toBe(700);
    expect(data!.charge.replayed).toBe(false);
    expect(data!.charge.transaction).toMatchObject({
      kind: 'CHARGE',
      status: 'POSTED',
      amount: 300,
      direction: 'CREDIT',
      balanceAfter: 300,
      orderReference: 'A-1',
    });
    expect(await harness().balanceOf(card!)).toBe(700);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(300);
  });

  test('accepts spaces and hyphens in the prepaid ID', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 500);
    const grouped = `${card!.slice(0, 4)} ${card!.slice(4, 8)}-${card!.slice(8, 12)} - ${card!.slice(12)}`;

    const { data } = await harness().request(CHARGE, chargeInput(grouped, 200), merchant.key);

    expect(data!.charge.__typename).toBe('ChargeSuccess');
    expect(await harness().balanceOf(card!)).toBe(300);
  });

  test('reports insufficient balance with the available amount', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data } = await harness().request(CHARGE, chargeInput(card!, 1_001), merchant.key);

    expect(data!.charge).toMatchObject({
      __typename: 'InsufficientBalanceError',
      code: 'INSUFFICIENT_BALANCE',
      available: 1_000,
    });
    expect(await harness().balanceOf(card!)).toBe(1_000);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
  });

  test('gives one answer for bad check digit, unknown and blocked IDs', async () => {
    const merchant = await harness().createMerchant();
    const [card, blocked] = await harness().issueCards(2, 1_000);
    const badCheckDigit = card!.slice(0, 15) + String((Number(card!.at(-1)) + 1) % 10);
    const unknown = '4111111111111111';
    const found = await harness().services.prepaidIds.resolve(harness().sql(), blocked!);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'blocked');

    for (const prepaidId of [badCheckDigit, unknown, blocked!, '1234', 'abcd-efgh-ijkl-mnop']) {
      const { data } = await harness().request(CHARGE, chargeInput(prepaidId, 100), merchant.key);
      expect(data!.charge).toEqual({
        __typename: 'InvalidPrepaidIdError',
        code: 'INVALID_PREPAID_ID',
        message: 'The prepaid ID is not valid for payment',
      });
    }
    expect(await harness().balanceOf(card!)).toBe(1_000);
    expect(await harness().balanceOf(blocked!)).toBe(1_000);
    expect(
      await harness().count('SELECT count(*) FROM ledger_transaction WHERE merchant_id = ?', [
        merchant.id,
      ]),
    ).toBe(0);
  });

  test('rejects a charge above the maximum amount', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data } = await harness().request(CHARGE, chargeInput(card!, 2 ** 31), merchant.key);

    expect(data!.charge).toMatchObject({ code: 'AMOUNT_LIMIT_EXCEEDED', maximum: 1_000_000 });
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('requires a merchant API key', async () => {
    const [card] = await harness().issueCards(1, 1_000);

    const anonymous = await harness().request(CHARGE, chargeInput(card!, 100));
    const badKey = await harness().request(
      CHARGE,
      chargeInput(card!, 100),
      'mk_000000000000_' + 'x'.repeat(43),
    );

    expect(anonymous.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expect(badKey.status).toBe(401);
    expect(badKey.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('rejects a revoked API key', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const prefix = apiKeyPrefix(merchant.key);
    expect(await harness().services.apiKeys.revoke(harness().sql(), prefix)).toBe(true);

    const { errors, status } = await harness().request(
      CHARGE,
      chargeInput(card!, 100),
      merchant.key,
    );

    expect(status).toBe(401);
    expect(errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('checks the scope of the API key', async () => {
    const merchant = await harness().createMerchant();
    const readOnly = await harness().services.apiKeys.create(
      harness().sql(),
      merchant.id,
      'read only',
      ['read'],
    );
    const [card] = await harness().issueCards(1, 1_000);

    const { errors } = await harness().request(CHARGE, chargeInput(card!, 100), readOnly.key);

    expect(errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });
});

describe('refund', () => {
  async function chargeOf(amount: number, faceValue = 1_000) {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, faceValue);
    const { data } = await harness().request(CHARGE, chargeInput(card!, amount), merchant.key);
    return { merchant, card: card!, chargeId: data!.charge.transaction.id as string };
  }

  test('returns part and then the rest to the card', async () => {
    const { merchant, card, chargeId } = await chargeOf(600);

    const first = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, amount: 250, idempotencyKey: newKey() } },
      merchant.key,
    );
    const rest = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, idempotencyKey: newKey() } },
      merchant.key,
    );
    const more = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, amount: 1, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(first.data!.refund).toMatchObject({
      __typename: 'RefundSuccess',
      refundableRemaining: 350,
      transaction: {
        kind: 'REFUND',
        amount: 250,
        direction: 'DEBIT',
        balanceAfter: 350,
        parentTransactionId: chargeId,
      },
    });
    expect(rest.data!.refund).toMatchObject({
      __typename: 'RefundSuccess',
      refundableRemaining: 0,
      transaction: { amount: 350 },
    });
    expect(more.data!.refund).toMatchObject({ code: 'REFUND_EXCEEDS_CHARGE', refundable: 0 });
    expect(await harness().balanceOf(card)).toBe(1_000);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
  });

  test('refuses more than was charged', async () => {
    const { merchant, card, chargeId } = await chargeOf(300);

    const { data } = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, amount: 301, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(data!.refund).toMatchObject({
      __typename: 'RefundExceedsChargeError',
      code: 'REFUND_EXCEEDS_CHARGE',
      refundable: 300,
    });
    expect(await harness().balanceOf(card)).toBe(700);
  });

  test("hides another merchant's charge", async () => {
    const { card, chargeId } = await chargeOf(300);
    const other = await harness().createMerchant('Other Shop');

    const { data } = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, amount: 100, idempotencyKey: newKey() } },
      other.key,
    );
    const garbage = await harness().request(
      REFUND,
      { input: { transactionId: 'not-an-id', idempotencyKey: newKey() } },
      other.key,
    );

    expect(data!.refund).toMatchObject({
      __typename: 'TransactionNotFoundError',
      code: 'TRANSACTION_NOT_FOUND',
    });
    expect(garbage.data!.refund).toMatchObject({ code: 'TRANSACTION_NOT_FOUND' });
    expect(await harness().balanceOf(card)).toBe(700);
  });

  test('refunds a charge on a card blocked since', async () => {
    const { merchant, card, chargeId } = await chargeOf(400);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'blocked');

    const { data } = await harness().request(
      REFUND,
      { input: { transactionId: chargeId, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(data!.refund.__typename).toBe('RefundSuccess');
    expect(await harness().balanceOf(card)).toBe(1_000);
  });
});

describe('prepaidBalance', () => {
  test('reports the balance of a valid ID and nothing else', async () => {
    const merchant = await harness().createMerchant();
    const [card, blocked] = await harness().issueCards(2, 1_200);
    await harness().request(CHARGE, chargeInput(card!, 200), merchant.key);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), blocked!);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'blocked');

    const valid = await harness().request(BALANCE, { id: card }, merchant.key);
    const invalid = await harness().request(BALANCE, { id: '4111111111111111' }, merchant.key);
    const wasBlocked = await harness().request(BALANCE, { id: blocked }, merchant.key);

    expect(valid.data!.prepaidBalance).toEqual({ valid: true, balance: 1_000 });
    expect(invalid.data!.prepaidBalance).toEqual({ valid: false, balance: null });
    expect(wasBlocked.data!.prepaidBalance).toEqual({ valid: false, balance: null });
  });
});

describe('merchant transactions', () => {
  test('pages newest first with keyset cursors', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 10_000);
    for (let index = 1; index <= 5; index++) {
      const { data } = await harness().request(
        CHARGE,
        chargeInput(card!, index * 100, { orderReference: `order-${index}` }),
        merchant.key,
      );
      expect(data!.charge.__typename).toBe('ChargeSuccess');
    }

    const first = await harness().request(PAGE, { first: 2 }, merchant.key);
    const second = await harness().request(
      PAGE,
      { first: 2, after: first.data!.merchant.transactions.pageInfo.endCursor },
      merchant.key,
    );
    const third = await harness().request(
      PAGE,
      { first: 2, after: second.data!.merchant.transactions.pageInfo.endCursor },
      merchant.key,
    );

    const references = (page: typeof first) =>
      page.data!.merchant.transactions.edges.map((edge: any) => edge.node.orderReference);
    expect(first.data!.merchant.settlementBalance).toBe(1_500);
    expect(references(first)).toEqual(['order-5', 'order-4']);
    expect(references(second)).toEqual(['order-3', 'order-2']);
    expect(references(third)).toEqual(['order-1']);
    expect(first.data!.merchant.transactions.pageInfo).toMatchObject({
      hasNextPage: true,
      hasPreviousPage: false,
    });
    expect(second.data!.merchant.transactions.pageInfo).toMatchObject({
      hasNextPage: true,
      hasPreviousPage: true,
    });
    expect(third.data!.merchant.transactions.pageInfo).toMatchObject({
      hasNextPage: false,
      hasPreviousPage: true,
    });
    expect(first.data!.merchant.transactions.edges[0].node.balanceAfter).toBe(1_500);
  });

  test('shows only the calling merchant', async () => {
    const merchant = await harness().createMerchant();
    const other = await harness().createMerchant('Other');
    const [card] = await harness().issueCards(1, 1_000);
    await harness().request(CHARGE, chargeInput(card!, 100), merchant.key);

    const { data } = await harness().request(PAGE, { first: 10 }, other.key);

    expect(data!.merchant.transactions.edges).toEqual([]);
    expect(data!.merchant.settlementBalance).toBe(0);
  });

  test('rejects a malformed cursor and page size', async () => {
    const merchant = await harness().createMerchant();

    const badCursor = await harness().request(PAGE, { first: 2, after: 'bm9wZQ' }, merchant.key);
    const badSize = await harness().request(PAGE, { first: 1_000 }, merchant.key);

    expect(badCursor.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(badSize.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });
});
