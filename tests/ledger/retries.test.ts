import { Client } from 'pg';
import { CHARGE, chargeInput, useHarness } from '../support/harness';

const harness = useHarness({ DATABASE_LOCK_TIMEOUT_MS: '200' }, { captureLogs: true });

/**
 * Holds the ledger lock of an account from another connection for a while.
 * The promise of the release is wrapped, because awaiting a promise that
 * resolves to a promise would wait for the release too.
 */
async function holdLock(
  accountId: string,
  milliseconds: number,
): Promise<{ released: Promise<void> }> {
  const client = new Client({ connectionString: harness().config.databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT pg_advisory_xact_lock(7340001, $1::integer)', [accountId]);
  const released = new Promise<void>((resolve) =>
    setTimeout(async () => {
      await client.query('COMMIT');
      await client.end();
      resolve();
    }, milliseconds),
  );
  return { released };
}

describe('ledger retries', () => {
  test('a lock timeout is retried and the charge goes through once', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    const { released } = await holdLock(found!.ledgerAccountId, 350);

    const { data } = await harness().request(CHARGE, chargeInput(card!, 300), merchant.key);
    await released;

    expect(data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 700 });
    expect(await harness().balanceOf(card!)).toBe(700);
    const retries = harness().logs.filter((line) => line.includes('retrying ledger posting'));
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]).toContain('"code":"55P03"');
  });

  test('gives up after a bounded number of retries with a masked error', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    const { released } = await holdLock(found!.ledgerAccountId, 3_000);

    const { data, errors } = await harness().request(CHARGE, chargeInput(card!, 300), merchant.key);
    await released;

    expect(data?.charge ?? null).toBeNull();
    expect(errors![0]!.message).toBe('Internal server error');
    expect(errors![0]!.extensions!.code).toBe('INTERNAL_SERVER_ERROR');
    expect(errors![0]!.extensions!.requestId).toEqual(expect.any(String));
    expect(JSON.stringify(errors)).not.toMatch(/lock|55P03|SELECT/i);
    const logged = harness().logs.filter((line) =>
      line.includes(String(errors![0]!.extensions!.requestId)),
    );
    expect(
      logged.filter((line) => line.includes('unexpected error in GraphQL request')),
    ).toHaveLength(1);
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });
});
