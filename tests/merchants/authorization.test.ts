import { sqlFor, type Sql } from '../../src/database/sql';
import { fromGlobalId } from '../../src/graphql/relay';
import { createLogger } from '../../src/logging/logger';
import type { AuthorizationService } from '../../src/merchants/authorization.service';
import { startHoldSweeper } from '../../src/merchants/hold-sweeper';
import {
  CHARGE,
  chargeInput,
  newKey,
  REFUND,
  useHarness,
  waitFor,
  type GraphQLResponse,
  type TestMerchant,
} from '../support/harness';
import { signUp, VIEWER, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true, captureLogs: true });

const AUTHORIZE = `
  mutation Authorize($input: AuthorizeInput!) {
    authorize(input: $input) {
      __typename
      ... on AuthorizationSuccess {
        expiresAt
        replayed
        authorization { id kind status amount direction balanceAfter orderReference description metadata }
      }
      ... on UserError { code message }
      ... on InsufficientBalanceError { available }
      ... on AmountLimitExceededError { maximum }
    }
  }`;

const CAPTURE = `
  mutation Capture($input: CaptureInput!) {
    capture(input: $input) {
      __typename
      ... on CaptureSuccess {
        balanceAfter
        released
        replayed
        transaction { id kind status amount direction balanceAfter parentTransactionId orderReference }
      }
      ... on UserError { code message }
      ... on AuthorizationNotPendingError { settledBy }
      ... on AuthorizationExpiredError { expiredAt }
      ... on CaptureExceedsAuthorizationError { held }
    }
  }`;

const VOID = `
  mutation Void($input: VoidInput!) {
    voidAuthorization(input: $input) {
      __typename
      ... on VoidSuccess {
        replayed
        transaction { id kind status amount direction parentTransactionId orderReference }
      }
      ... on UserError { code message }
      ... on AuthorizationNotPendingError { settledBy }
      ... on AuthorizationExpiredError { expiredAt }
    }
  }`;

const BALANCE = `query Balance($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;

let orderCounter = 0;

function authorizeInput(prepaidId: string, amount: unknown, extra: Record<string, unknown> = {}) {
  return {
    input: {
      prepaidId,
      amount,
      idempotencyKey: newKey('authorize'),
      orderReference: `hold-${++orderCounter}`,
      ...extra,
    },
  };
}

/** Authorizes and fails the test unless the authorization succeeded; returns its global ID. */
async function authorizeOrFail(merchant: TestMerchant, prepaidId: string, amount: number) {
  const { data, errors } = await harness().request(
    AUTHORIZE,
    authorizeInput(prepaidId, amount),
    merchant.key,
  );
  expect(errors).toBeUndefined();
  expect(data!.authorize.__typename).toBe('AuthorizationSuccess');
  return {
    authorizationId: data!.authorize.authorization.id as string,
    expiresAt: data!.authorize.expiresAt as string,
  };
}

/** Creates a merchant and a card of `faceValue`, and authorizes `amount` on the card. */
async function authorizedCard(amount = 500, faceValue = 1_000) {
  const merchant = await harness().createMerchant();
  const [card] = await harness().issueCards(1, faceValue);
  const authorization = await authorizeOrFail(merchant, card!, amount);
  return { merchant, card: card!, ...authorization };
}

async function capture(key: string, authorizationId: string, extra: Record<string, unknown> = {}) {
  return resultOf(
    await harness().request(CAPTURE, { input: { authorizationId, ...extra } }, key),
    'capture',
  );
}

async function voidHold(key: string, authorizationId: string, extra: Record<string, unknown> = {}) {
  return resultOf(
    await harness().request(VOID, { input: { authorizationId, ...extra } }, key),
    'voidAuthorization',
  );
}

/** Returns the mutation's result, or its GraphQL error code in `__typename` when it failed outright. */
function resultOf(response: GraphQLResponse, field: string): Record<string, any> {
  const result = response.data?.[field];
  if (result) return result;
  return { __typename: `GraphQL error ${String(response.errors?.[0]?.extensions?.code)}` };
}

/** Posted and held balance of a prepaid ID's ledger account. */
async function balancesOf(prepaidId: string): Promise<{ posted: number; held: number }> {
  const found = await harness().services.prepaidIds.resolve(harness().sql(), prepaidId);
  if (!found) throw new Error('unknown prepaid ID');
  const row = await harness()
    .sql()
    .one<{ balance_posted: string; balance_held: string }>(
      'SELECT balance_posted, balance_held FROM ledger_account WHERE id = ?',
      [found.ledgerAccountId],
    );
  return { posted: Number(row!.balance_posted), held: Number(row!.balance_held) };
}

async function availableBalance(key: string, prepaidId: string): Promise<number> {
  const { data } = await harness().request(BALANCE, { id: prepaidId }, key);
  expect(data!.prepaidBalance.valid).toBe(true);
  return data!.prepaidBalance.balance as number;
}

/** Fails unless every account's held balance equals its unsettled authorizations. */
async function expectHeldBalancesMatch(): Promise<void> {
  const report = await harness().ledgerCheck();
  expect(report.mismatches).toEqual([]);
  expect(report.balanced).toBe(true);
}

async function settlementsOf(
  authorizationId: string,
): Promise<Array<{ kind: string; status: string }>> {
  return harness()
    .sql()
    .query<{ kind: string; status: string }>(
      `SELECT kind, status FROM ledger_transaction
      WHERE parent_id = ? AND kind IN ('capture', 'void', 'expiry') ORDER BY created_at`,
      [databaseId(authorizationId)],
    );
}

function databaseId(globalId: string): string {
  const id = fromGlobalId('Transaction', globalId);
  if (!id) throw new Error(`not a Transaction ID: ${globalId}`);
  return id;
}

/** Moves the server's clock past the hold time of every authorization made so far. */
function passHoldTime(): void {
  harness().services.clock.advance(harness().config.authorizationHoldMinutes * 60_000 + 1_000);
}

function errorLogsSince(start: number): string[] {
  return harness()
    .logs.slice(start)
    .filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
}

describe('authorize and capture', () => {
  test('card: hold, charge over available, capture, refund', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const before = harness().services.clock.now();

    const authorized = await harness().request(
      AUTHORIZE,
      authorizeInput(card!, 500, { orderReference: 'H-1', metadata: { cart: 7 } }),
      merchant.key,
    );

    expect(authorized.errors).toBeUndefined();
    const success = authorized.data!.authorize;
    expect(success).toMatchObject({
      __typename: 'AuthorizationSuccess',
      replayed: false,
      authorization: {
        kind: 'AUTHORIZATION',
        status: 'PENDING',
        amount: 500,
        direction: 'CREDIT',
        balanceAfter: 0,
        orderReference: 'H-1',
        metadata: { cart: 7 },
      },
    });
    const holdMs = harness().config.authorizationHoldMinutes * 60_000;
    const expiresAt = new Date(success.expiresAt as string).getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + holdMs);
    expect(expiresAt).toBeLessThanOrEqual(harness().services.clock.now() + holdMs);
    expect(await balancesOf(card!)).toEqual({ posted: 1_000, held: 500 });
    expect(await availableBalance(merchant.key, card!)).toBe(500);
    await expectHeldBalancesMatch();

    const overAvailable = await harness().request(CHARGE, chargeInput(card!, 600), merchant.key);
    expect(overAvailable.data!.charge).toMatchObject({
      __typename: 'InsufficientBalanceError',
      code: 'INSUFFICIENT_BALANCE',
      available: 500,
    });

    const authorizationId = success.authorization.id as string;
    const captured = await capture(merchant.key, authorizationId, { amount: 300 });
    expect(captured).toMatchObject({
      __typename: 'CaptureSuccess',
      balanceAfter: 700,
      released: 200,
      replayed: false,
      transaction: {
        kind: 'CAPTURE',
        status: 'POSTED',
        amount: 300,
        direction: 'CREDIT',
        balanceAfter: 300,
        parentTransactionId: authorizationId,
        orderReference: 'H-1',
      },
    });
    expect(await balancesOf(card!)).toEqual({ posted: 700, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(300);
    expect(await availableBalance(merchant.key, card!)).toBe(700);
    await expectHeldBalancesMatch();

    const again = await capture(merchant.key, authorizationId, { amount: 100 });
    expect(again).toMatchObject({
      __typename: 'AuthorizationNotPendingError',
      code: 'AUTHORIZATION_NOT_PENDING',
      settledBy: 'CAPTURE',
    });

    const refunded = await harness().request(
      REFUND,
      {
        input: { transactionId: captured.transaction.id, amount: 100, idempotencyKey: newKey() },
      },
      merchant.key,
    );
    expect(refunded.data!.refund).toMatchObject({
      __typename: 'RefundSuccess',
      refundableRemaining: 200,
      transaction: { kind: 'REFUND', amount: 100, parentTransactionId: captured.transaction.id },
    });
    expect(await balancesOf(card!)).toEqual({ posted: 800, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(200);
    await expectHeldBalancesMatch();
  });

  test('member wallet: held and available balances', async () => {
    const merchant = await harness().createMerchant();
    const member = await signUp(harness(), 'holder');
    const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
    await harness().fund(prepaidId, 1_000);

    const { authorizationId } = await authorizeOrFail(merchant, prepaidId, 500);

    const held = await harness().request(VIEWER, {}, member.sessionToken);
    expect(held.data!.viewer.wallet).toMatchObject({
      balancePosted: 1_000,
      balanceHeld: 500,
      balanceAvailable: 500,
    });
    expect(await availableBalance(merchant.key, prepaidId)).toBe(500);
    const overAvailable = await harness().request(
      CHARGE,
      chargeInput(prepaidId, 600),
      merchant.key,
    );
    expect(overAvailable.data!.charge).toMatchObject({
      code: 'INSUFFICIENT_BALANCE',
      available: 500,
    });
    await expectHeldBalancesMatch();

    const captured = await capture(merchant.key, authorizationId, { amount: 300 });
    expect(captured).toMatchObject({ __typename: 'CaptureSuccess', balanceAfter: 700 });

    const settled = await harness().request(VIEWER, {}, member.sessionToken);
    expect(settled.data!.viewer.wallet).toMatchObject({
      balancePosted: 700,
      balanceHeld: 0,
      balanceAvailable: 700,
    });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(300);
    await expectHeldBalancesMatch();
  });

  test('capture without amount takes the whole hold', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(400);

    const captured = await capture(merchant.key, authorizationId);

    expect(captured).toMatchObject({
      __typename: 'CaptureSuccess',
      balanceAfter: 600,
      released: 0,
      transaction: { amount: 400 },
    });
    expect(await balancesOf(card)).toEqual({ posted: 600, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(400);
  });

  test('capture above the hold is rejected', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(400);

    const captured = await capture(merchant.key, authorizationId, { amount: 401 });

    expect(captured).toMatchObject({
      __typename: 'CaptureExceedsAuthorizationError',
      code: 'CAPTURE_EXCEEDS_AUTHORIZATION',
      held: 400,
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 400 });
    expect(await settlementsOf(authorizationId)).toEqual([]);
  });

  test('authorize reports available as posted less held', async () => {
    const { merchant, card } = await authorizedCard(700);

    const { data } = await harness().request(AUTHORIZE, authorizeInput(card, 400), merchant.key);

    expect(data!.authorize).toMatchObject({
      __typename: 'InsufficientBalanceError',
      code: 'INSUFFICIENT_BALANCE',
      available: 300,
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 700 });
  });

  test('authorize checks amount and prepaid ID', async () => {
    const merchant = await harness().createMerchant();
    const [card, blocked] = await harness().issueCards(2, 1_000);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), blocked!);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'blocked');

    for (const amount of [0, -5]) {
      const { errors } = await harness().request(
        AUTHORIZE,
        authorizeInput(card!, amount),
        merchant.key,
      );
      expect(errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    }
    const tooLarge = await harness().request(
      AUTHORIZE,
      authorizeInput(card!, 1_000_001),
      merchant.key,
    );
    expect(tooLarge.data!.authorize).toMatchObject({
      __typename: 'AmountLimitExceededError',
      code: 'AMOUNT_LIMIT_EXCEEDED',
      maximum: 1_000_000,
    });
    const badCheckDigit = card!.slice(0, 15) + String((Number(card!.at(-1)) + 1) % 10);
    for (const prepaidId of [badCheckDigit, '4111111111111111', blocked!, '1234']) {
      const { data } = await harness().request(
        AUTHORIZE,
        authorizeInput(prepaidId, 100),
        merchant.key,
      );
      expect(data!.authorize).toEqual({
        __typename: 'InvalidPrepaidIdError',
        code: 'INVALID_PREPAID_ID',
        message: 'The prepaid ID is not valid for payment',
      });
    }
    expect(await balancesOf(card!)).toEqual({ posted: 1_000, held: 0 });
    expect(await balancesOf(blocked!)).toEqual({ posted: 1_000, held: 0 });
  });

  test('every operation needs the charge scope', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    const refundOnly = await harness().services.apiKeys.create(
      harness().sql(),
      merchant.id,
      'refunds only',
      ['refund', 'inquiry', 'read'],
    );

    const authorized = await harness().request(
      AUTHORIZE,
      authorizeInput(card, 100),
      refundOnly.key,
    );
    const captured = await capture(refundOnly.key, authorizationId);
    const voided = await voidHold(refundOnly.key, authorizationId);
    const anonymous = await harness().request(CAPTURE, { input: { authorizationId } });

    expect(authorized.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect(captured.__typename).toBe('GraphQL error FORBIDDEN');
    expect(voided.__typename).toBe('GraphQL error FORBIDDEN');
    expect(anonymous.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 500 });
  });
});

describe('void', () => {
  test('releases the hold once', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);

    const voided = await voidHold(merchant.key, authorizationId);

    expect(voided).toMatchObject({
      __typename: 'VoidSuccess',
      replayed: false,
      transaction: {
        kind: 'VOID',
        status: 'VOIDED',
        amount: 500,
        parentTransactionId: authorizationId,
      },
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
    expect(await availableBalance(merchant.key, card)).toBe(1_000);
    await expectHeldBalancesMatch();

    const twice = await voidHold(merchant.key, authorizationId);
    expect(twice).toMatchObject({
      __typename: 'AuthorizationNotPendingError',
      code: 'AUTHORIZATION_NOT_PENDING',
      settledBy: 'VOID',
    });
    const captureAfter = await capture(merchant.key, authorizationId);
    expect(captureAfter).toMatchObject({
      code: 'AUTHORIZATION_NOT_PENDING',
      settledBy: 'VOID',
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'void', status: 'voided' }]);
  });

  test('void after capture is rejected', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    await capture(merchant.key, authorizationId, { amount: 200 });

    const voided = await voidHold(merchant.key, authorizationId);

    expect(voided).toMatchObject({ code: 'AUTHORIZATION_NOT_PENDING', settledBy: 'CAPTURE' });
    expect(await balancesOf(card)).toEqual({ posted: 800, held: 0 });
  });
});

describe('another merchant', () => {
  test('cannot capture or void', async () => {
    const { card, authorizationId } = await authorizedCard(500);
    const other = await harness().createMerchant('Other Shop');

    const captured = await capture(other.key, authorizationId);
    const voided = await voidHold(other.key, authorizationId);

    for (const result of [captured, voided]) {
      expect(result).toEqual({
        __typename: 'AuthorizationNotFoundError',
        code: 'AUTHORIZATION_NOT_FOUND',
        message: 'No such authorization of this merchant',
      });
    }
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 500 });
    expect(await harness().accountBalance(other.settlementAccountId)).toBe(0);
    expect(await settlementsOf(authorizationId)).toEqual([]);
  });

  test('malformed IDs and charges are not found', async () => {
    const { merchant, card } = await authorizedCard(500);
    const charge = await harness().request(CHARGE, chargeInput(card, 100), merchant.key);
    const transactionOfAnotherType = Buffer.from(
      `Wallet:${databaseId(charge.data!.charge.transaction.id)}`,
    ).toString('base64url');
    const unknownUuid = Buffer.from('Transaction:00000000-0000-4000-8000-000000000000').toString(
      'base64url',
    );

    for (const authorizationId of [
      'not an id',
      charge.data!.charge.transaction.id,
      transactionOfAnotherType,
      unknownUuid,
      Buffer.from('Transaction:1 OR 1=1').toString('base64url'),
    ]) {
      expect(await capture(merchant.key, authorizationId)).toMatchObject({
        code: 'AUTHORIZATION_NOT_FOUND',
      });
      expect(await voidHold(merchant.key, authorizationId)).toMatchObject({
        code: 'AUTHORIZATION_NOT_FOUND',
      });
    }
    expect(await balancesOf(card)).toEqual({ posted: 900, held: 500 });
  });
});

describe('idempotency', () => {
  test('authorize replay returns the same hold', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = authorizeInput(card!, 500);

    const first = await harness().request(AUTHORIZE, variables, merchant.key);
    const second = await harness().request(AUTHORIZE, variables, merchant.key);

    expect(first.data!.authorize.replayed).toBe(false);
    expect(second.data!.authorize.replayed).toBe(true);
    expect(second.data!.authorize.authorization.id).toBe(first.data!.authorize.authorization.id);
    expect(second.data!.authorize.expiresAt).toBe(first.data!.authorize.expiresAt);
    expect(await balancesOf(card!)).toEqual({ posted: 1_000, held: 500 });

    const otherAmount = await harness().request(
      AUTHORIZE,
      { input: { ...variables.input, amount: 501 } },
      merchant.key,
    );
    expect(otherAmount.data!.authorize).toMatchObject({
      __typename: 'IdempotencyKeyReusedError',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect(await balancesOf(card!)).toEqual({ posted: 1_000, held: 500 });
    expect(
      await harness().count(
        `SELECT count(*) FROM ledger_transaction WHERE merchant_id = ? AND kind = 'authorization'`,
        [merchant.id],
      ),
    ).toBe(1);
  });

  test('concurrent authorize with one key holds once', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const variables = authorizeInput(card!, 100);

    const results = await Promise.all(
      Array.from({ length: 8 }, () => harness().request(AUTHORIZE, variables, merchant.key)),
    );

    const ids = new Set(results.map((result) => result.data!.authorize.authorization.id));
    expect(ids.size).toBe(1);
    expect(results.filter((result) => !result.data!.authorize.replayed)).toHaveLength(1);
    expect(await balancesOf(card!)).toEqual({ posted: 1_000, held: 100 });
  });

  test('capture replay returns the first capture', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    const idempotencyKey = newKey('capture');

    const first = await capture(merchant.key, authorizationId, { amount: 300, idempotencyKey });
    const replay = await capture(merchant.key, authorizationId, { amount: 300, idempotencyKey });
    const otherAmount = await capture(merchant.key, authorizationId, {
      amount: 200,
      idempotencyKey,
    });

    expect(first).toMatchObject({ __typename: 'CaptureSuccess', replayed: false });
    expect(replay).toMatchObject({
      __typename: 'CaptureSuccess',
      replayed: true,
      balanceAfter: 700,
      released: 200,
      transaction: { id: first.transaction.id, amount: 300 },
    });
    expect(otherAmount).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await balancesOf(card)).toEqual({ posted: 700, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(300);
  });

  test('void replay returns the first void', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    const idempotencyKey = newKey('void');

    const first = await voidHold(merchant.key, authorizationId, { idempotencyKey });
    const replay = await voidHold(merchant.key, authorizationId, { idempotencyKey });
    const asCapture = await capture(merchant.key, authorizationId, { idempotencyKey });

    expect(first).toMatchObject({ __typename: 'VoidSuccess', replayed: false });
    expect(replay).toMatchObject({
      __typename: 'VoidSuccess',
      replayed: true,
      transaction: { id: first.transaction.id },
    });
    expect(asCapture).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
  });
});

describe('one-time prepaid ID', () => {
  const CREATE_ONE_TIME = `
    mutation Create($input: CreateOneTimePrepaidIdInput!) {
      createOneTimePrepaidId(input: $input) {
        __typename
        ... on OneTimePrepaidIdCreated { prepaidId }
        ... on UserError { code }
      }
    }`;

  /** Signs up a member with a funded wallet and creates a one-time ID for it. */
  async function fundedOneTimeId(input: Record<string, unknown> = {}) {
    const member = await signUp(harness(), 'onetime');
    const walletId = await walletPrepaidId(harness(), member.sessionToken);
    await harness().fund(walletId, 1_000);
    const { data, errors } = await harness().request(
      CREATE_ONE_TIME,
      { input },
      member.sessionToken,
    );
    expect(errors).toBeUndefined();
    expect(data!.createOneTimePrepaidId.__typename).toBe('OneTimePrepaidIdCreated');
    return { walletId, oneTimeId: data!.createOneTimePrepaidId.prepaidId as string };
  }

  test('is spent by the first authorization', async () => {
    const merchant = await harness().createMerchant();
    const { walletId, oneTimeId } = await fundedOneTimeId();

    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        harness().request(AUTHORIZE, authorizeInput(oneTimeId, 200), merchant.key),
      ),
    );

    const kinds = results.map((result) => result.data!.authorize.__typename).sort();
    expect(kinds).toEqual([
      'AuthorizationSuccess',
      'InvalidPrepaidIdError',
      'InvalidPrepaidIdError',
      'InvalidPrepaidIdError',
      'InvalidPrepaidIdError',
    ]);
    const oneTime = await harness().services.prepaidIds.resolve(harness().sql(), oneTimeId);
    expect(oneTime!.status).toBe('spent');
    const charged = await harness().request(CHARGE, chargeInput(oneTimeId, 100), merchant.key);
    expect(charged.data!.charge.code).toBe('INVALID_PREPAID_ID');
    expect(await balancesOf(walletId)).toEqual({ posted: 1_000, held: 200 });

    // The spent ID has done its work: the hold it made can still be captured.
    const success = results.find(
      (result) => result.data!.authorize.__typename === 'AuthorizationSuccess',
    )!;
    const captured = await capture(merchant.key, success.data!.authorize.authorization.id);
    // Authorized through a one-time ID, so the merchant is shown no balance.
    expect(captured).toMatchObject({ __typename: 'CaptureSuccess', balanceAfter: 0 });
    expect(await balancesOf(walletId)).toEqual({ posted: 800, held: 0 });
    await expectHeldBalancesMatch();
  });

  test('above its cap is invalid', async () => {
    const merchant = await harness().createMerchant();
    const { walletId, oneTimeId } = await fundedOneTimeId({ amountCap: 300 });

    const overCap = await harness().request(
      AUTHORIZE,
      authorizeInput(oneTimeId, 301),
      merchant.key,
    );
    const withinCap = await harness().request(
      AUTHORIZE,
      authorizeInput(oneTimeId, 300),
      merchant.key,
    );

    expect(overCap.data!.authorize.code).toBe('INVALID_PREPAID_ID');
    expect(withinCap.data!.authorize.__typename).toBe('AuthorizationSuccess');
    expect(await balancesOf(walletId)).toEqual({ posted: 1_000, held: 300 });
  });
});

describe('concurrent settlement', () => {
  test('10 captures of one hold: one succeeds', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);

    const results = await Promise.all(
      Array.from({ length: 10 }, () => capture(merchant.key, authorizationId, { amount: 300 })),
    );

    const kinds = results.map((result) => result.__typename);
    expect(kinds.filter((kind) => kind === 'CaptureSuccess')).toHaveLength(1);
    expect(
      results.filter(
        (result) => result.code === 'AUTHORIZATION_NOT_PENDING' && result.settledBy === 'CAPTURE',
      ),
    ).toHaveLength(9);
    expect(await balancesOf(card)).toEqual({ posted: 700, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(300);
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'capture', status: 'posted' }]);
  });

  test('captures and voids race: one settles', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);

    const results = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        index % 2 === 0
          ? capture(merchant.key, authorizationId, { amount: 300 })
          : voidHold(merchant.key, authorizationId),
      ),
    );

    const successes = results.filter((result) =>
      ['CaptureSuccess', 'VoidSuccess'].includes(result.__typename),
    );
    expect(successes).toHaveLength(1);
    expect(results.filter((result) => result.code === 'AUTHORIZATION_NOT_PENDING')).toHaveLength(9);
    const settlements = await settlementsOf(authorizationId);
    expect(settlements).toHaveLength(1);
    const expected = settlements[0]!.kind === 'capture' ? 700 : 1_000;
    expect(await balancesOf(card)).toEqual({ posted: expected, held: 0 });
  });

  test('guard alone serialises captures without the index', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    const sql = harness().sql();
    await sql.query('DROP INDEX ledger_transaction_settled_once');
    let results: Array<Record<string, any>>;
    try {
      results = await Promise.all(
        Array.from({ length: 10 }, () => capture(merchant.key, authorizationId, { amount: 300 })),
      );
    } finally {
      await sql.query(
        `CREATE UNIQUE INDEX ledger_transaction_settled_once
           ON ledger_transaction (parent_id) WHERE kind IN ('capture', 'void', 'expiry')`,
      );
    }

    const kinds = results!.map((result) => result.__typename);
    expect(kinds.filter((kind) => kind === 'CaptureSuccess')).toHaveLength(1);
    expect(kinds.filter((kind) => kind === 'AuthorizationNotPendingError')).toHaveLength(9);
    expect(await balancesOf(card)).toEqual({ posted: 700, held: 0 });
    expect(await settlementsOf(authorizationId)).toHaveLength(1);
  });

  test('settled-once index rejects a capture the guard missed', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    const logStart = harness().logs.length;

    const captured = await raceWithUncommittedVoid(authorizationId, () =>
      capture(merchant.key, authorizationId, { amount: 300 }),
    );

    expect(captured).toMatchObject({
      __typename: 'AuthorizationNotPendingError',
      code: 'AUTHORIZATION_NOT_PENDING',
      settledBy: 'VOID',
    });
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'void', status: 'voided' }]);
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
    expect(errorLogsSince(logStart)).toEqual([]);
    const warnings = harness()
      .logs.slice(logStart)
      .filter((line) => line.includes('settled-once index rejected'));
    expect(warnings).toHaveLength(1);
  });
});

/**
 * Inserts a void of the authorization in a database transaction that takes
 * no account locks, as a writer that bypassed the ledger would, and commits
 * it only once `competitor` waits for that row on the settled-once index.
 * The void row is written without touching balances, so that the competitor
 * never waits on an account row. The hold is released on the account
 * afterwards, which keeps the ledger balanced.
 */
async function raceWithUncommittedVoid<T>(
  authorizationId: string,
  competitor: () => Promise<T>,
): Promise<T> {
  const id = databaseId(authorizationId);
  let pending: Promise<T> | undefined;
  await harness()
    .em()
    .transactional(async (tx) => {
      const sql = sqlFor(tx);
      await sql.query(
        `INSERT INTO ledger_transaction (
           kind, status, debit_account_id, credit_account_id, amount,
           debit_balance_after, credit_balance_after, merchant_id, prepaid_id_id, parent_id)
         SELECT 'void', 'voided', a.debit_account_id, a.credit_account_id, a.amount,
                d.balance_posted, c.balance_posted, a.merchant_id, a.prepaid_id_id, a.id
           FROM ledger_transaction a
           JOIN ledger_account d ON d.id = a.debit_account_id
           JOIN ledger_account c ON c.id = a.credit_account_id
          WHERE a.id = ?`,
        [id],
      );
      pending = competitor();
      pending.catch(() => undefined);
      await waitFor(
        async () => (await waitingOnTransactions(sql)) > 0,
        10_000,
        'a settlement to wait on the uncommitted void',
      );
    });
  const result = await pending!;
  await harness()
    .sql()
    .query(
      `UPDATE ledger_account a SET balance_held = a.balance_held - t.amount
         FROM ledger_transaction t WHERE t.id = ? AND a.id = t.debit_account_id`,
      [id],
    );
  return result;
}

/** Counts sessions of this database that wait for another transaction to end. */
async function waitingOnTransactions(sql: Sql): Promise<number> {
  const row = await sql.one<{ count: string }>(
    `SELECT count(*) AS count FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
      WHERE NOT l.granted AND l.locktype = 'transactionid' AND s.datname = current_database()`,
  );
  return Number(row!.count);
}

// These tests move the server's clock past the hold time, which expires
// every hold made before them too, so they run last.
describe('expiry', () => {
  test('capture after the hold time expires the hold', async () => {
    const { merchant, card, authorizationId, expiresAt } = await authorizedCard(500);
    passHoldTime();

    const captured = await capture(merchant.key, authorizationId, { amount: 300 });

    expect(captured).toMatchObject({
      __typename: 'AuthorizationExpiredError',
      code: 'AUTHORIZATION_EXPIRED',
      expiredAt: expiresAt,
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'expiry', status: 'expired' }]);
    await expectHeldBalancesMatch();

    const voided = await voidHold(merchant.key, authorizationId);
    const capturedAgain = await capture(merchant.key, authorizationId);
    expect(voided).toMatchObject({ code: 'AUTHORIZATION_EXPIRED', expiredAt: expiresAt });
    expect(capturedAgain).toMatchObject({ code: 'AUTHORIZATION_EXPIRED' });
    expect(await settlementsOf(authorizationId)).toHaveLength(1);
  });

  test('void after the hold time fails as expired', async () => {
    const { merchant, card, authorizationId } = await authorizedCard(500);
    passHoldTime();

    const voided = await voidHold(merchant.key, authorizationId);

    expect(voided).toMatchObject({
      __typename: 'AuthorizationExpiredError',
      code: 'AUTHORIZATION_EXPIRED',
    });
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'expiry', status: 'expired' }]);
    await expectHeldBalancesMatch();
  });

  test('expireDue releases due holds once across concurrent sweeps', async () => {
    const merchant = await harness().createMerchant();
    const cards = await harness().issueCards(3, 1_000);
    const due: string[] = [];
    for (const card of cards)
      due.push((await authorizeOrFail(merchant, card, 400)).authorizationId);
    passHoldTime();
    const [later] = await harness().issueCards(1, 1_000);
    const notDue = await authorizeOrFail(merchant, later!, 400);
    const logStart = harness().logs.length;

    const now = new Date(harness().services.clock.now());
    const runs = await Promise.all([
      harness().services.authorizations.expireDue(harness().em(), now),
      harness().services.authorizations.expireDue(harness().em(), now),
    ]);

    const dueIds = due.map(databaseId).sort();
    const expiredByRuns = runs.flatMap((run) => run.expired).filter((id) => dueIds.includes(id));
    expect(expiredByRuns.sort()).toEqual(dueIds);
    expect(runs.map((run) => run.failed)).toEqual([0, 0]);
    for (const authorizationId of due) {
      expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'expiry', status: 'expired' }]);
    }
    for (const card of cards) expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(await settlementsOf(notDue.authorizationId)).toEqual([]);
    expect(await balancesOf(later!)).toEqual({ posted: 1_000, held: 400 });
    expect(errorLogsSince(logStart)).toEqual([]);
    await expectHeldBalancesMatch();

    const again = await harness().services.authorizations.expireDue(harness().em(), now);
    expect(again.expired.filter((id) => dueIds.includes(id))).toEqual([]);
  });

  test('expireDue skips a hold that the index shows settled', async () => {
    const { card, authorizationId } = await authorizedCard(500);
    passHoldTime();
    const logStart = harness().logs.length;

    const run = await raceWithUncommittedVoid(authorizationId, () =>
      harness().services.authorizations.expireDue(harness().em()),
    );

    expect(run.expired).not.toContain(databaseId(authorizationId));
    expect(run.alreadySettled).toBeGreaterThanOrEqual(1);
    expect(run.failed).toBe(0);
    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'void', status: 'voided' }]);
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(errorLogsSince(logStart)).toEqual([]);
  });

  test('two sweeper timers release a hold once', async () => {
    const { card, authorizationId } = await authorizedCard(500);
    passHoldTime();
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const { orm } = harness().server;
    const { authorizations } = harness().services;

    const stops = [
      startHoldSweeper(orm, authorizations, logger, 15),
      startHoldSweeper(orm, authorizations, logger, 15),
    ];
    try {
      await waitFor(
        async () => (await balancesOf(card)).held === 0,
        10_000,
        'a sweeper to release the hold',
      );
      // A few more sweeps of both timers must find nothing left to do.
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await Promise.all(stops.map((stop) => stop()));
    }

    expect(await settlementsOf(authorizationId)).toEqual([{ kind: 'expiry', status: 'expired' }]);
    expect(await balancesOf(card)).toEqual({ posted: 1_000, held: 0 });
    expect(lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
    expect(
      lines.some((line) => line.includes('released the holds of expired authorizations')),
    ).toBe(true);
    await expectHeldBalancesMatch();
  });

  test('sweeper logs a failed sweep and keeps going', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    let calls = 0;
    const failing = {
      async expireDue() {
        calls++;
        throw new Error('database unavailable');
      },
    } as unknown as AuthorizationService;

    const stop = startHoldSweeper(harness().server.orm, failing, logger, 10);
    try {
      await waitFor(() => calls >= 3, 5_000, 'three sweeps');
    } finally {
      await stop();
    }
    const callsAtStop = calls;
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(calls).toBe(callsAtStop);
    const failures = lines.filter((line) => line.includes('hold sweep failed'));
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures[0]).toContain('database unavailable');
  });
});
