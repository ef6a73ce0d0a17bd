import { Client } from 'pg';
import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import { signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true });

/** The first key of LedgerService's two-key advisory locks on ledger accounts. */
const ACCOUNT_LOCK_NAMESPACE = 7_340_001;

const WITHDRAW = `
  mutation W($input: WithdrawInput!) {
    withdraw(input: $input) { __typename ... on Withdrawn { forfeited } ... on UserError { code } }
  }`;

/**
 * Holds the ledger lock of an account on a connection of its own while
 * `action` runs, and reports whether the transaction that waits for the lock
 * had a transaction id assigned by then. Postgres assigns one at the first
 * write or row lock.
 */
async function xidAssignedBeforeLockWait(
  accountId: string,
  action: () => Promise<unknown>,
): Promise<{ xidAssigned: boolean; result: unknown }> {
  const holder = new Client({ connectionString: harness().config.databaseUrl });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1, $2::integer)', [
      ACCOUNT_LOCK_NAMESPACE,
      accountId,
    ]);
    const running = action();
    let waiter: { xid: string | null } | undefined;
    await waitFor(
      async () => {
        waiter = await harness()
          .sql()
          .one<{ xid: string | null }>(
            `SELECT a.backend_xid::text AS xid
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND NOT l.granted
                AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 2
                AND a.datname = current_database()`,
            [ACCOUNT_LOCK_NAMESPACE, accountId],
          );
        return waiter !== undefined;
      },
      10_000,
      `a wait for the ledger lock of account ${accountId}`,
    );
    await holder.query('COMMIT');
    return { xidAssigned: waiter!.xid !== null, result: await running };
  } finally {
    await holder.end();
  }
}

describe('ledger locks come before the first write', () => {
  test.each(['wallet', 'forfeiture'] as const)(
    'in a withdrawal, waiting for the %s account',
    async (held) => {
      const member = await signUp(harness(), 'leaving');
      const walletId = await walletPrepaidId(harness(), member.sessionToken);
      await harness().fund(walletId, 500);
      const wallet = await harness().services.prepaidIds.resolve(harness().sql(), walletId);
      const heldAccount =
        held === 'wallet'
          ? wallet!.ledgerAccountId
          : await harness().services.ledger.operatorAccountId(harness().sql(), 'forfeiture');

      const { xidAssigned, result } = await xidAssignedBeforeLockWait(heldAccount, () =>
        harness().request(
          WITHDRAW,
          { input: { password: member.password, confirmForfeitAmount: 500 } },
          member.sessionToken,
        ),
      );

      expect(xidAssigned).toBe(false);
      expect((result as any).data.withdraw).toEqual({ __typename: 'Withdrawn', forfeited: 500 });
      expect(await harness().balanceOf(walletId)).toBe(0);
    },
  );

  test('in a card issuance', async () => {
    const issuance = await harness().services.ledger.operatorAccountId(harness().sql(), 'issuance');

    const { xidAssigned, result } = await xidAssignedBeforeLockWait(issuance, () =>
      harness().issueCards(2, 300),
    );

    expect(xidAssigned).toBe(false);
    const cards = result as string[];
    expect(cards).toHaveLength(2);
    expect(await harness().balanceOf(cards[0]!)).toBe(300);
    expect(await harness().balanceOf(cards[1]!)).toBe(300);
  });
});

describe('a charge locks the merchant account last', () => {
  test('with no transaction id while it waits', async () => {
    const merchant = await harness().createMerchant('Busy Shop');
    const [card] = await harness().issueCards(1, 1_000);
    const settlement = await harness().services.merchants.settlementAccountId(
      harness().sql(),
      merchant.id,
    );

    const { xidAssigned, result } = await xidAssignedBeforeLockWait(settlement, () =>
      harness().request(CHARGE, chargeInput(card!, 400), merchant.key),
    );

    expect(xidAssigned).toBe(false);
    expect((result as any).data.charge).toMatchObject({
      __typename: 'ChargeSuccess',
      balanceAfter: 600,
    });
    expect(await harness().balanceOf(card!)).toBe(600);
  });
});

describe('a rotation takes the ledger lock first', () => {
  // A withdrawal locks the ledger account, then the wallet row; a rotation
  // that locked the wallet row first could deadlock with it.
  test('and holds no wallet row while it waits', async () => {
    const member = await signUp(harness(), 'rotating');
    const walletId = await walletPrepaidId(harness(), member.sessionToken);
    const wallet = await harness().services.prepaidIds.resolve(harness().sql(), walletId);
    const holder = new Client({ connectionString: harness().config.databaseUrl });
    await holder.connect();

    let walletRowFree: boolean;
    let rotation: Promise<unknown>;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2::integer)', [
        ACCOUNT_LOCK_NAMESPACE,
        wallet!.ledgerAccountId,
      ]);
      rotation = harness().request(
        'mutation { rotatePrepaidId { __typename } }',
        {},
        member.sessionToken,
      );
      await waitFor(
        async () =>
          (await harness().count(
            `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objid::bigint = ?
                AND a.datname = current_database()`,
            [wallet!.ledgerAccountId],
          )) > 0,
        10_000,
        'the rotation to wait for the ledger lock',
      );
      const free = await holder.query(
        'SELECT id FROM wallet WHERE ledger_account_id = $1 FOR UPDATE SKIP LOCKED',
        [wallet!.ledgerAccountId],
      );
      walletRowFree = free.rowCount === 1;
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }

    expect(walletRowFree).toBe(true);
    expect(((await rotation) as any).data.rotatePrepaidId).toEqual({
      __typename: 'PrepaidIdRotated',
    });
  });
});
