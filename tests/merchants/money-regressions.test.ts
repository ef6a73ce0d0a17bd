import { CHARGE, chargeInput, newKey, useHarness } from '../support/harness';
import {
  enableTwoFactor,
  freshTotpCode,
  newKeyFor,
  signUp,
  walletPrepaidId,
} from '../support/members';

const harness = useHarness({ MAX_WALLET_BALANCE: '100000' }, { smtp: true });

const CLI = { via: 'cli' } as const;
const AUTHORIZE = `mutation A($input: AuthorizeInput!) { authorize(input: $input) { __typename ... on AuthorizationSuccess { authorization { id } } ... on UserError { code } } }`;
const CAPTURE = `mutation C($input: CaptureInput!) { capture(input: $input) { __typename ... on CaptureSuccess { balanceAfter } ... on UserError { code } } }`;
const CREDIT = `mutation C($input: CreditPointsInput!) { creditPoints(input: $input) { __typename ... on UserError { code } ... on CreditLimitExceededError { available } } }`;
const ONE_TIME = `mutation O($input: CreateOneTimePrepaidIdInput!) { createOneTimePrepaidId(input: $input) { __typename ... on OneTimePrepaidIdCreated { id prepaidId } ... on UserError { code } } }`;
const TRANSFER = `mutation T($input: TransferInput!) { transfer(input: $input) { __typename ... on UserError { code } } }`;

async function fundedMember(label: string, amount: number) {
  const member = await signUp(harness(), label);
  const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
  if (amount > 0) await harness().fund(prepaidId, amount);
  return { member, prepaidId };
}

async function authorize(prepaidId: string, amount: number, key: string): Promise<string> {
  const { data } = await harness().request(
    AUTHORIZE,
    { input: { prepaidId, amount, idempotencyKey: newKey(), orderReference: 'hold' } },
    key,
  );
  return data!.authorize.authorization.id;
}

describe('money regressions', () => {
  test('a capped one-time ID does not show the wallet balance', async () => {
    const { member } = await fundedMember('capped', 20_000);
    const merchant = await harness().createMerchant();
    const forCharge = (
      await harness().request(ONE_TIME, { input: { amountCap: 300 } }, member.sessionToken)
    ).data!.createOneTimePrepaidId;
    const forHold = (
      await harness().request(ONE_TIME, { input: { amountCap: 300 } }, member.sessionToken)
    ).data!.createOneTimePrepaidId;

    const charge = await harness().request(
      CHARGE,
      chargeInput(forCharge.prepaidId, 1),
      merchant.key,
    );
    const authorizationId = await authorize(forHold.prepaidId, 1, merchant.key);
    const capture = await harness().request(CAPTURE, { input: { authorizationId } }, merchant.key);

    expect(charge.data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 0 });
    expect(capture.data!.capture).toEqual({ __typename: 'CaptureSuccess', balanceAfter: 0 });
  });

  test('a frozen wallet or a blocked card cannot pay by capture', async () => {
    const { member, prepaidId } = await fundedMember('frozen', 5_000);
    const [card] = await harness().issueCards(1, 1_000);
    const merchant = await harness().createMerchant();
    const walletHold = await authorize(prepaidId, 1_000, merchant.key);
    const cardHold = await authorize(card!, 500, merchant.key);
    await harness().services.operators.freezeWallet(harness().em(), CLI, {
      username: member.username,
      reason: 'test',
    });
    await harness().services.operators.blockPrepaidId(harness().em(), CLI, {
      prepaidId: card!,
      reason: 'test',
    });

    const fromWallet = await harness().request(
      CAPTURE,
      { input: { authorizationId: walletHold } },
      merchant.key,
    );
    const fromCard = await harness().request(
      CAPTURE,
      { input: { authorizationId: cardHold } },
      merchant.key,
    );

    expect(fromWallet.data!.capture.code).toBe('INVALID_PREPAID_ID');
    expect(fromCard.data!.capture.code).toBe('INVALID_PREPAID_ID');
    expect(await harness().balanceOf(prepaidId)).toBe(5_000);
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('blocking the wallet ID leaves one-time IDs of an active wallet usable', async () => {
    const { member, prepaidId } = await fundedMember('blockmain', 1_000);
    const merchant = await harness().createMerchant();
    await harness().services.operators.blockPrepaidId(harness().em(), CLI, {
      prepaidId,
      reason: 'number leaked',
    });

    const created = await harness().request(ONE_TIME, { input: {} }, member.sessionToken);
    const viaOneTime = await harness().request(
      CHARGE,
      chargeInput(created.data!.createOneTimePrepaidId.prepaidId, 100),
      merchant.key,
    );
    const viaWalletId = await harness().request(CHARGE, chargeInput(prepaidId, 100), merchant.key);

    expect(viaOneTime.data!.charge.__typename).toBe('ChargeSuccess');
    expect(viaWalletId.data!.charge.code).toBe('INVALID_PREPAID_ID');
  });

  test('a merchant that cannot pay learns nothing of the wallet balance', async () => {
    const { prepaidId } = await fundedMember('probe', 99_000);
    const merchant = await harness().createMerchant();

    const { data } = await harness().request(
      CREDIT,
      { input: { prepaidId, amount: 5_000, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(data!.creditPoints).toEqual({
      __typename: 'CreditLimitExceededError',
      code: 'CREDIT_LIMIT_EXCEEDED',
      available: 0,
    });
  });

  test('the available credit is never below zero', async () => {
    const { prepaidId } = await fundedMember('negative', 0);
    const merchant = await harness().createMerchant();
    await harness()
      .sql()
      .query('UPDATE merchant SET credit_limit = 50 WHERE id = ?', [merchant.id]);
    await harness().request(
      CREDIT,
      { input: { prepaidId, amount: 50, idempotencyKey: newKey() } },
      merchant.key,
    );
    await harness().sql().query('UPDATE merchant SET credit_limit = 0 WHERE id = ?', [merchant.id]);

    const { data } = await harness().request(
      CREDIT,
      { input: { prepaidId, amount: 1, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(data!.creditPoints).toMatchObject({ code: 'CREDIT_LIMIT_EXCEEDED', available: 0 });
  });

  test('transfer answers dead IDs as invalid and is rate limited', async () => {
    const { member } = await fundedMember('prober', 0);
    const other = await signUp(harness(), 'rotated');
    const oldId = await walletPrepaidId(harness(), other.sessionToken);
    await harness().request('mutation { rotatePrepaidId { __typename } }', {}, other.sessionToken);

    const retired = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: oldId } },
      member.sessionToken,
    );
    const probe = (index: number) =>
      `t${index}: transfer(input: { sourcePrepaidId: "4111111111111111" }) { __typename }`;
    const many = await harness().request(
      `mutation { ${Array.from({ length: 29 }, (_, index) => probe(index)).join(' ')} }`,
      {},
      member.sessionToken,
    );
    const beyond = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: oldId } },
      member.sessionToken,
    );

    expect(retired.data!.transfer.code).toBe('INVALID_PREPAID_ID');
    expect(many.errors).toBeUndefined();
    expect(beyond.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
  });

  test('an expired one-time ID cannot be cancelled', async () => {
    const { member } = await fundedMember('expired', 100);
    const created = await harness().request(
      ONE_TIME,
      { input: { expiresInMinutes: 1 } },
      member.sessionToken,
    );
    harness().services.clock.advance(61_000);

    const { data } = await harness().request(
      'mutation C($id: String!) { cancelOneTimePrepaidId(id: $id) { __typename ... on UserError { code } } }',
      { id: created.data!.createOneTimePrepaidId.id },
      member.sessionToken,
    );

    expect(data!.cancelOneTimePrepaidId).toEqual({
      __typename: 'OneTimeIdNotFoundError',
      code: 'ONE_TIME_ID_NOT_FOUND',
    });
  });

  test('right two-factor codes do not use up the code limit', async () => {
    const member = await signUp(harness(), 'manycodes');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);

    for (let action = 0; action < 14; action++) {
      const { data, errors } = await harness().request(
        'mutation R($code: String) { revealPrepaidId(twoFactorCode: $code) { __typename } }',
        { code: freshTotpCode(harness(), secret) },
        member.sessionToken,
      );
      expect(errors).toBeUndefined();
      expect(data!.revealPrepaidId.__typename).toBe('PrepaidIdRevealed');
    }
  });

  test('a retried transfer key does not hide a rate limit', async () => {
    const { member } = await fundedMember('transferkey', 0);
    const [card] = await harness().issueCards(1, 100);

    const { data } = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: card, amount: 10, idempotencyKey: newKeyFor('t') } },
      member.sessionToken,
    );

    expect(data!.transfer.__typename).toBe('TransferSuccess');
  });
});
