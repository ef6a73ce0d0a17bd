import { Client } from 'pg';
import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import { signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true });

const CREATE = `
  mutation { createOneTimePrepaidId(input: {}) { ... on OneTimePrepaidIdCreated { id prepaidId } } }`;
const CANCEL = `
  mutation C($id: String!) { cancelOneTimePrepaidId(id: $id) { __typename ... on UserError { code } } }`;

async function fundedMember(label: string, amount: number) {
  const member = await signUp(harness(), label);
  const walletId = await walletPrepaidId(harness(), member.sessionToken);
  await harness().fund(walletId, amount);
  return { member, walletId };
}

async function createOneTime(token: string): Promise<{ id: string; prepaidId: string }> {
  const { data } = await harness().request(CREATE, {}, token);
  return data!.createOneTimePrepaidId;
}

/** Reads the stored status of a one-time ID and counts the charges on it. */
async function stateOf(prepaidId: string): Promise<{ status: string; charges: number }> {
  const found = await harness().services.prepaidIds.resolve(harness().sql(), prepaidId);
  const charges = await harness().count(
    `SELECT count(*) FROM ledger_transaction WHERE kind = 'charge' AND prepaid_id_id = ?`,
    [found!.id],
  );
  return { status: found!.status, charges };
}

/** Waits until a backend of the test database waits for a lock while running `statement`. */
function waitForLockWait(statement: string): Promise<void> {
  return waitFor(
    async () =>
      (await harness().count(
        `SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ?`,
        [`${statement}%`],
      )) > 0,
    10_000,
    `a lock wait in "${statement}"`,
  );
}

describe('cancelling a one-time ID during a charge', () => {
  test('charge loses to a committed cancellation', async () => {
    const { member, walletId } = await fundedMember('cancelfirst', 1_000);
    const merchant = await harness().createMerchant();
    const oneTime = await createOneTime(member.sessionToken);
    // Holding audit_log in SHARE mode stops the cancellation after its
    // UPDATE, before its audit entry and its commit.
    const holder = new Client({ connectionString: harness().config.databaseUrl });
    await holder.connect();
    let cancel, charge;
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE audit_log IN SHARE MODE');
      const cancelling = harness().request(CANCEL, { id: oneTime.id }, member.sessionToken);
      await waitForLockWait('INSERT INTO audit_log');
      // The charge still reads the ID as active, then waits for the row.
      const charging = harness().request(CHARGE, chargeInput(oneTime.prepaidId, 300), merchant.key);
      await waitForLockWait('UPDATE prepaid_id');
      await holder.query('COMMIT');
      [cancel, charge] = await Promise.all([cancelling, charging]);
    } finally {
      await holder.end();
    }

    expect(cancel.data!.cancelOneTimePrepaidId).toEqual({
      __typename: 'OneTimePrepaidIdCancelled',
    });
    expect(charge.data!.charge).toMatchObject({
      __typename: 'InvalidPrepaidIdError',
      code: 'INVALID_PREPAID_ID',
    });
    expect(await stateOf(oneTime.prepaidId)).toEqual({ status: 'cancelled', charges: 0 });
    expect(await harness().balanceOf(walletId)).toBe(1_000);
  });

  test('concurrent cancel and charge: exactly one wins', async () => {
    const rounds = 25;
    const { member, walletId } = await fundedMember('cancelrace', 1_000);
    const merchant = await harness().createMerchant();
    let expectedBalance = 1_000;

    for (let round = 0; round < rounds; round++) {
      const oneTime = await createOneTime(member.sessionToken);
      const [cancel, charge] = await Promise.all([
        harness().request(CANCEL, { id: oneTime.id }, member.sessionToken),
        harness().request(CHARGE, chargeInput(oneTime.prepaidId, 10), merchant.key),
      ]);
      const cancelled =
        cancel.data!.cancelOneTimePrepaidId.__typename === 'OneTimePrepaidIdCancelled';
      const charged = charge.data!.charge.__typename === 'ChargeSuccess';
      if (charged) expectedBalance -= 10;

      expect({ round, cancelled, charged }).toEqual({ round, cancelled: !charged, charged });
      if (!cancelled)
        expect(cancel.data!.cancelOneTimePrepaidId.code).toBe('ONE_TIME_ID_NOT_FOUND');
      if (!charged) expect(charge.data!.charge.code).toBe('INVALID_PREPAID_ID');
      expect(await stateOf(oneTime.prepaidId)).toEqual(
        charged ? { status: 'spent', charges: 1 } : { status: 'cancelled', charges: 0 },
      );
    }
    expect(await harness().balanceOf(walletId)).toBe(expectedBalance);
  });
});
