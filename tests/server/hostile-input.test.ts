import { CHARGE, chargeInput, newKey, REFUND, useHarness, apiKeySecret } from '../support/harness';

const harness = useHarness({}, { captureLogs: true });

const PAGE = `query P($after: String) { merchant { transactions(first: 1, after: $after) { edges { cursor } } } }`;

function cursorOf(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

async function post(body: string | Buffer, headers: Record<string, string> = {}) {
  const response = await fetch(harness().server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

describe('unreadable request bodies', () => {
  test.each([
    ['invalid JSON', '{"query": ', {}, 400, 'The request body is not valid JSON'],
    [
      'a body over the limit',
      JSON.stringify({ query: `{ __typename } #${'x'.repeat(200_000)}` }),
      {},
      413,
      'The request body is larger than the server accepts',
    ],
    [
      'another charset',
      '{"query":"{ __typename }"}',
      { 'content-type': 'application/json; charset=latin1' },
      415,
      'The request body must be UTF-8 JSON',
    ],
    [
      'an unsupported encoding',
      '{"query":"{ __typename }"}',
      { 'content-encoding': 'compress' },
      415,
      'The request body must not be compressed',
    ],
  ])('answers %s with a JSON error', async (_case, body, headers, status, message) => {
    const response = await post(body, headers);

    expect(response.status).toBe(status);
    expect(response.type).toMatch(/^application\/json/);
    expect(JSON.parse(response.text)).toEqual({
      errors: [{ message, extensions: { code: 'BAD_REQUEST' } }],
    });
    expect(response.text).not.toMatch(/node_modules|at \w+ \(/);
  });

  test('never logs the body of a rejected request', async () => {
    const prepaidId = '8793218390173070';

    await post(`{"query": "${prepaidId}`);

    expect(harness().logs.join('\n')).not.toContain(prepaidId);
    expect(harness().logs.some((line) => line.includes('rejected an unreadable request'))).toBe(
      true,
    );
  });
});

describe('input that reached the database as an internal error', () => {
  test.each([
    [
      'an impossible time',
      cursorOf(['9999-99-99T99:99:99.999999Z', '00000000-0000-0000-0000-000000000000']),
    ],
    [
      'a time before year 1',
      cursorOf(['0000-01-01T00:00:00.000000Z', '00000000-0000-0000-0000-000000000000']),
    ],
    ['an id of hyphens', cursorOf(['2026-01-01T00:00:00.000000Z', '-'.repeat(36)])],
  ])('rejects a cursor with %s as bad input', async (_case, after) => {
    const merchant = await harness().createMerchant();

    const { errors } = await harness().request(PAGE, { after }, merchant.key);

    expect(errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(errors)).not.toMatch(/SELECT|timestamptz/);
  });

  test('treats a refund of a malformed transaction id as not found', async () => {
    const merchant = await harness().createMerchant();
    const transactionId = Buffer.from(`Transaction:${'-'.repeat(36)}`).toString('base64url');

    const { data, errors } = await harness().request(
      REFUND,
      { input: { transactionId, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(errors).toBeUndefined();
    expect(data!.refund.code).toBe('TRANSACTION_NOT_FOUND');
  });

  test.each([
    ['a lone surrogate', { note: 'a\ud800b' }],
    ['a lone surrogate in a key', { ['k\udc00']: 1 }],
    ['the NUL character', { note: 'a\u0000b' }],
    // eslint-disable-next-line no-loss-of-precision -- the imprecise number is the point
    ['an unsafe whole number', { big: 12345678901234567890 }],
  ])('rejects metadata with %s', async (_case, metadata) => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data, errors } = await harness().request(
      CHARGE,
      chargeInput(card!, 100, { metadata }),
      merchant.key,
    );

    expect(data?.charge ?? null).toBeNull();
    expect(errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'metadata' });
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test.each([
    ['a number beyond a double', '{"big": 1e400}'],
    ['deep nesting', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
  ])('rejects metadata with %s sent as raw JSON', async (_case, metadataJson) => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const { input } = chargeInput(card!, 100);
    const body = `{"query": ${JSON.stringify(CHARGE)}, "variables": {"input": ${JSON.stringify(input).slice(0, -1)}, "metadata": ${metadataJson}}}}`;

    const response = await post(body, { authorization: `Bearer ${merchant.key}` });

    const { errors } = JSON.parse(response.text);
    expect(errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'metadata' });
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test.each([
    ['a lone surrogate', 'a\ud800b'],
    ['a line separator', 'a\u2028b'],
    ['a next-line character', 'a\u0085b'],
    ['only invisible characters', '\u200b\ufeff '],
  ])('rejects an order reference with %s', async (_case, orderReference) => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const { data, errors } = await harness().request(
      CHARGE,
      chargeInput(card!, 100, { orderReference }),
      merchant.key,
    );

    expect(data?.charge ?? null).toBeNull();
    expect(errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'orderReference',
    });
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('rejects control characters in a description', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);

    const bell = await harness().request(
      CHARGE,
      chargeInput(card!, 100, { description: 'ring \u0007' }),
      merchant.key,
    );
    const lines = await harness().request(
      CHARGE,
      chargeInput(card!, 100, { description: 'line one\nline two' }),
      merchant.key,
    );

    expect(bell.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'description',
    });
    expect(lines.data!.charge.__typename).toBe('ChargeSuccess');
  });

  test('keeps metadata as given', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const metadata = { z: 1, a: [1.5, 'two', null, true], nested: { deep: { deeper: 'ok' } } };

    const { data } = await harness().request(
      CHARGE,
      chargeInput(card!, 100, { metadata }),
      merchant.key,
    );

    expect(data!.charge.transaction.metadata).toEqual(metadata);
  });
});

describe('Points literal errors', () => {
  test.each([
    ['1.5', 'got 1.5'],
    ['1e308', 'got 1e308'],
    ['9007199254740992', 'got 9007199254740992'],
  ])('names the literal %s as written', async (literal, expected) => {
    const merchant = await harness().createMerchant();
    const query = `mutation { charge(input: { prepaidId: "4111111111111111", amount: ${literal}, idempotencyKey: "k", orderReference: "o" }) { __typename } }`;

    const { errors } = await harness().request(query, {}, merchant.key);

    expect(errors![0]!.message).toContain(expected);
    expect(errors![0]!.message).not.toContain('FloatValue');
  });
});

describe('logging', () => {
  test('never logs the query string of a GET request', async () => {
    const merchant = await harness().createMerchant();
    const prepaidId = '1247212687168262';
    const query = encodeURIComponent(
      `query { prepaidBalance(prepaidId: "${prepaidId}") { valid } }`,
    );

    const response = await fetch(
      `${harness().server.url}?query=${query}&access_token=${merchant.key}`,
      {
        headers: { 'apollo-require-preflight': '1', authorization: `Bearer ${merchant.key}` },
      },
    );

    expect(response.status).toBe(200);
    const logged = harness().logs.join('\n');
    expect(logged).not.toContain(prepaidId);
    expect(logged).not.toContain(apiKeySecret(merchant.key));
    expect(logged).toContain('"path":"/graphql"');
  });
});
