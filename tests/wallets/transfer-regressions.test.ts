import { useHarness } from '../support/harness';
import { newKeyFor, signUp, walletPrepaidId, type TestMember } from '../support/members';

const harness = useHarness({}, { smtp: true });

const TRANSFER = `
  mutation T($input: TransferInput!) {
    transfer(input: $input) {
      __typename
      ... on TransferSuccess { replayed transaction { id kind amount balanceAfter } }
      ... on UserError { code }
    }
  }`;

/** The CLI's operator actor, for blocking cards and freezing wallets as test setup. */
const CLI = { via: 'cli' } as const;

function transfer(member: TestMember, input: Record<string, unknown>) {
  return harness().request(TRANSFER, { input }, member.sessionToken);
}

async function memberId(member: TestMember): Promise<string> {
  const row = await harness()
    .sql()
    .one<{ id: string }>('SELECT id FROM member WHERE username = ?', [member.username]);
  return row!.id;
}

describe('transfer retries', () => {
  test('replay after the card was emptied', async () => {
    const member = await signUp(harness(), 'emptied');
    const [card] = await harness().issueCards(1, 1_000);
    const input = { sourcePrepaidId: card, idempotencyKey: newKeyFor('whole') };

    const first = await transfer(member, input);
    const retry = await transfer(member, input);
    const reused = await transfer(member, { ...input, amount: 1_000 });

    expect(first.data!.transfer).toMatchObject({
      __typename: 'TransferSuccess',
      replayed: false,
      transaction: { kind: 'TOP_UP', amount: 1_000, balanceAfter: 1_000 },
    });
    expect(retry.data!.transfer).toEqual({
      __typename: 'TransferSuccess',
      replayed: true,
      transaction: first.data!.transfer.transaction,
    });
    expect(reused.data!.transfer).toEqual({
      __typename: 'IdempotencyKeyReusedError',
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    expect(await harness().balanceOf(card!)).toBe(0);
    expect(await harness().balanceOf(await walletPrepaidId(harness(), member.sessionToken))).toBe(
      1_000,
    );
  });

  test('replay after the card was blocked', async () => {
    const member = await signUp(harness(), 'blockedcard');
    const [card] = await harness().issueCards(1, 1_000);
    const input = { sourcePrepaidId: card, amount: 400, idempotencyKey: newKeyFor('blocked') };
    const first = await transfer(member, input);
    await harness().services.operators.blockPrepaidId(harness().em(), CLI, {
      prepaidId: card!,
      reason: 'lost card',
    });

    const retry = await transfer(member, input);
    const fresh = await transfer(member, { ...input, idempotencyKey: newKeyFor('blocked') });

    expect(retry.data!.transfer).toEqual({
      __typename: 'TransferSuccess',
      replayed: true,
      transaction: first.data!.transfer.transaction,
    });
    expect(fresh.data!.transfer.code).toBe('INVALID_PREPAID_ID');
    expect(await harness().balanceOf(card!)).toBe(600);
  });

  test('replay after the wallet was frozen', async () => {
    const member = await signUp(harness(), 'frozen');
    const [card] = await harness().issueCards(1, 1_000);
    const input = { sourcePrepaidId: card, amount: 300, idempotencyKey: newKeyFor('frozen') };
    const first = await transfer(member, input);
    await harness().services.operators.freezeWallet(harness().em(), CLI, {
      username: member.username,
      reason: 'under review',
    });

    const retry = await transfer(member, input);
    const fresh = await transfer(member, { ...input, idempotencyKey: newKeyFor('frozen') });

    expect(retry.data!.transfer).toEqual({
      __typename: 'TransferSuccess',
      replayed: true,
      transaction: first.data!.transfer.transaction,
    });
    expect(fresh.data!.transfer.code).toBe('WALLET_UNAVAILABLE');
    expect(await harness().balanceOf(card!)).toBe(700);
  });
});

describe('transfer audit entry', () => {
  test('is written once with the transaction', async () => {
    const member = await signUp(harness(), 'audited');
    const [card] = await harness().issueCards(1, 1_000);
    const input = { sourcePrepaidId: card, amount: 250, idempotencyKey: newKeyFor('audit') };

    await transfer(member, input);
    await transfer(member, input);

    const transactions = await harness()
      .sql()
      .query<{ id: string }>(
        `SELECT id FROM ledger_transaction WHERE kind = 'top_up' AND actor_member_id = ?`,
        [await memberId(member)],
      );
    const entries = await harness()
      .sql()
      .query<{ ip: string; details: Record<string, unknown> }>(
        `SELECT ip, details FROM audit_log WHERE action = 'top_up' AND actor_member_id = ?`,
        [await memberId(member)],
      );
    expect(transactions).toHaveLength(1);
    expect(entries).toEqual([
      {
        ip: '127.0.0.1',
        details: {
          amount: 250,
          transactionId: transactions[0]!.id,
          cardLastDigits: card!.slice(-4),
        },
      },
    ]);
  });

  test('that fails to be written moves no money', async () => {
    const member = await signUp(harness(), 'auditfails');
    const [card] = await harness().issueCards(1, 500);
    const sql = harness().sql();
    // Stands for a crash after the money moved: the audit insert fails.
    await sql.query(`
      CREATE FUNCTION reject_top_up_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit entry rejected by the test'; END $$`);
    await sql.query(`
      CREATE TRIGGER reject_top_up_audit BEFORE INSERT ON audit_log
        FOR EACH ROW WHEN (NEW.action = 'top_up') EXECUTE FUNCTION reject_top_up_audit()`);
    let response;
    try {
      response = await transfer(member, { sourcePrepaidId: card });
    } finally {
      await sql.query('DROP TRIGGER reject_top_up_audit ON audit_log');
      await sql.query('DROP FUNCTION reject_top_up_audit()');
    }

    expect(response.errors![0]!.extensions!.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await harness().balanceOf(card!)).toBe(500);
    expect(await harness().balanceOf(await walletPrepaidId(harness(), member.sessionToken))).toBe(
      0,
    );
    expect(
      await harness().count(
        `SELECT count(*) FROM ledger_transaction WHERE kind = 'top_up' AND actor_member_id = ?`,
        [await memberId(member)],
      ),
    ).toBe(0);
  });
});
