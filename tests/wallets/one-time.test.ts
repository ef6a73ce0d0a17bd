import { CHARGE, chargeInput, useHarness } from '../support/harness';
import { signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true });

const CREATE = `
  mutation Create($input: CreateOneTimePrepaidIdInput!) {
    createOneTimePrepaidId(input: $input) {
      __typename
      ... on OneTimePrepaidIdCreated { id prepaidId amountCap expiresAt }
      ... on UserError { code }
    }
  }`;
const LIST = `query L($all: Boolean!) { viewer { wallet { oneTimePrepaidIds(includeInactive: $all) { id prepaidId status amountCap } } } }`;
const BALANCE = `query B($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;

async function funded(label: string, amount = 1_000) {
  const member = await signUp(harness(), label);
  const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
  await harness().fund(prepaidId, amount);
  return { member, prepaidId };
}

async function createOneTime(token: string, input: Record<string, unknown> = {}) {
  const { data, errors } = await harness().request(CREATE, { input }, token);
  if (errors) throw new Error(JSON.stringify(errors));
  return data!.createOneTimePrepaidId;
}

describe('one-time prepaid IDs', () => {
  test('pay once, then are spent', async () => {
    const { member } = await funded('once');
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken);

    const first = await harness().request(
      CHARGE,
      chargeInput(oneTime.prepaidId, 300),
      merchant.key,
    );
    const second = await harness().request(
      CHARGE,
      chargeInput(oneTime.prepaidId, 100),
      merchant.key,
    );
    const list = await harness().request(LIST, { all: true }, member.sessionToken);

    // A one-time ID shows the merchant no balance: it is spent.
    expect(first.data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 0 });
    expect(second.data!.charge.code).toBe('INVALID_PREPAID_ID');
    expect(list.data!.viewer.wallet.oneTimePrepaidIds).toEqual([
      {
        id: oneTime.id,
        prepaidId: `**** **** **** ${oneTime.prepaidId.slice(-4)}`,
        status: 'SPENT',
        amountCap: null,
      },
    ]);
    expect(
      (await harness().request(BALANCE, { id: oneTime.prepaidId }, merchant.key)).data!
        .prepaidBalance.valid,
    ).toBe(false);
  });

  test('refuse a charge above the cap without spending the ID', async () => {
    const { member } = await funded('cap');
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken, { amountCap: 500 });

    const inquiry = await harness().request(BALANCE, { id: oneTime.prepaidId }, merchant.key);
    const above = await harness().request(
      CHARGE,
      chargeInput(oneTime.prepaidId, 501),
      merchant.key,
    );
    const within = await harness().request(
      CHARGE,
      chargeInput(oneTime.prepaidId, 500),
      merchant.key,
    );

    expect(inquiry.data!.prepaidBalance).toEqual({ valid: true, balance: 500 });
    expect(above.data!.charge.code).toBe('INVALID_PREPAID_ID');
    expect(within.data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 0 });
    expect(await harness().balanceOf(await walletPrepaidId(harness(), member.sessionToken))).toBe(
      500,
    );
  });

  test('stop working at their expiry', async () => {
    const { member } = await funded('expiry');
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken, { expiresInMinutes: 5 });
    expect(Date.parse(oneTime.expiresAt) - harness().services.clock.now()).toBeGreaterThan(
      4 * 60_000,
    );

    harness().services.clock.advance(5 * 60_000 + 1_000);
    const late = await harness().request(CHARGE, chargeInput(oneTime.prepaidId, 100), merchant.key);
    const list = await harness().request(LIST, { all: true }, member.sessionToken);

    expect(late.data!.charge.code).toBe('INVALID_PREPAID_ID');
    expect(list.data!.viewer.wallet.oneTimePrepaidIds[0].status).toBe('EXPIRED');
  });

  test('10 concurrent charges: exactly one succeeds', async () => {
    const { member, prepaidId } = await funded('race', 10_000);
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken);

    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        harness().request(CHARGE, chargeInput(oneTime.prepaidId, 100), merchant.key),
      ),
    );

    expect(
      results.filter((result) => result.data!.charge.__typename === 'ChargeSuccess'),
    ).toHaveLength(1);
    expect(
      results.filter((result) => result.data!.charge.code === 'INVALID_PREPAID_ID'),
    ).toHaveLength(9);
    expect(await harness().balanceOf(prepaidId)).toBe(9_900);
  });

  test('can be listed and cancelled by their owner only', async () => {
    const { member } = await funded('cancel');
    const other = await signUp(harness(), 'other');
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken, { amountCap: 100 });
    const cancel = `mutation C($id: String!) {
      cancelOneTimePrepaidId(id: $id) {
        __typename
        ... on OneTimePrepaidIdCancelled { id }
        ... on UserError { code }
      }
    }`;
    const notFound = { __typename: 'OneTimeIdNotFoundError', code: 'ONE_TIME_ID_NOT_FOUND' };

    const byOther = await harness().request(cancel, { id: oneTime.id }, other.sessionToken);
    const active = await harness().request(LIST, { all: false }, member.sessionToken);
    const byOwner = await harness().request(cancel, { id: oneTime.id }, member.sessionToken);
    const again = await harness().request(cancel, { id: oneTime.id }, member.sessionToken);
    const malformed = await harness().request(cancel, { id: 'not-an-id' }, member.sessionToken);
    const charge = await harness().request(
      CHARGE,
      chargeInput(oneTime.prepaidId, 50),
      merchant.key,
    );

    expect(byOther.data!.cancelOneTimePrepaidId).toEqual(notFound);
    expect(active.data!.viewer.wallet.oneTimePrepaidIds.map((entry: any) => entry.id)).toEqual([
      oneTime.id,
    ]);
    expect(byOwner.data!.cancelOneTimePrepaidId).toEqual({
      __typename: 'OneTimePrepaidIdCancelled',
      id: oneTime.id,
    });
    expect(again.data!.cancelOneTimePrepaidId).toEqual(notFound);
    expect(malformed.data!.cancelOneTimePrepaidId).toEqual(notFound);
    expect(charge.data!.charge.code).toBe('INVALID_PREPAID_ID');
  });

  test('rotation and withdrawal leave none usable', async () => {
    const { member } = await funded('lifecycle');
    const merchant = await harness().createMerchant();
    const beforeRotation = await createOneTime(member.sessionToken);
    await harness().request('mutation { rotatePrepaidId { __typename } }', {}, member.sessionToken);
    const afterRotation = await createOneTime(member.sessionToken);
    await harness().request(
      'mutation W($input: WithdrawInput!) { withdraw(input: $input) { __typename } }',
      { input: { password: member.password, confirmForfeitAmount: 1_000 } },
      member.sessionToken,
    );

    for (const oneTime of [beforeRotation, afterRotation]) {
      const charge = await harness().request(
        CHARGE,
        chargeInput(oneTime.prepaidId, 10),
        merchant.key,
      );
      expect(charge.data!.charge.code).toBe('INVALID_PREPAID_ID');
    }
  });

  test('reject an expiry beyond the maximum', async () => {
    const { member } = await funded('limits');

    const { errors } = await harness().request(
      CREATE,
      { input: { expiresInMinutes: 10_000 } },
      member.sessionToken,
    );

    expect(errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'expiresInMinutes',
    });
  });
});
