import { useHarness } from '../support/harness';
import { newKeyFor, signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({ MAX_WALLET_BALANCE: '5000' }, { smtp: true });

const TRANSFER = `
  mutation T($input: TransferInput!) {
    transfer(input: $input) {
      __typename
      ... on TransferSuccess { replayed transaction { kind amount direction balanceAfter } }
      ... on UserError { code message }
      ... on InsufficientBalanceError { available }
    }
  }`;

describe('transfer from a card', () => {
  test('moves the whole card or a part into the wallet', async () => {
    const member = await signUp(harness(), 'topup');
    const [whole, part] = await harness().issueCards(2, 1_000);

    const all = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: whole } },
      member.sessionToken,
    );
    const some = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: part, amount: 400 } },
      member.sessionToken,
    );

    expect(all.data!.transfer).toMatchObject({
      __typename: 'TransferSuccess',
      transaction: { kind: 'TOP_UP', amount: 1_000, direction: 'CREDIT', balanceAfter: 1_000 },
    });
    expect(some.data!.transfer.transaction).toMatchObject({ amount: 400, balanceAfter: 1_400 });
    expect(await harness().balanceOf(whole!)).toBe(0);
    expect(await harness().balanceOf(part!)).toBe(600);
    expect(await harness().balanceOf(await walletPrepaidId(harness(), member.sessionToken))).toBe(
      1_400,
    );
    expect(
      await harness().count(`SELECT count(*) FROM audit_log WHERE action = 'top_up'`),
    ).toBeGreaterThanOrEqual(2);
  });

  test('rejects a depleted card: buy a new one', async () => {
    const member = await signUp(harness(), 'empty');
    const [card] = await harness().issueCards(1, 300);
    await harness().request(TRANSFER, { input: { sourcePrepaidId: card } }, member.sessionToken);

    const { data } = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: card } },
      member.sessionToken,
    );

    expect(data!.transfer).toMatchObject({ __typename: 'CardEmptyError', code: 'CARD_EMPTY' });
    expect(data!.transfer.message).toMatch(/buy a new card/);
  });

  test("rejects another member's wallet ID and one-time ID, moving nothing", async () => {
    const thief = await signUp(harness(), 'thief');
    const victim = await signUp(harness(), 'victim');
    const victimId = await walletPrepaidId(harness(), victim.sessionToken);
    await harness().fund(victimId, 1_000);
    const oneTime = await harness().request(
      'mutation { createOneTimePrepaidId(input: {}) { ... on OneTimePrepaidIdCreated { prepaidId } } }',
      {},
      victim.sessionToken,
    );
    const ownId = await walletPrepaidId(harness(), thief.sessionToken);

    for (const sourcePrepaidId of [
      victimId,
      oneTime.data!.createOneTimePrepaidId.prepaidId,
      ownId,
    ]) {
      const { data } = await harness().request(
        TRANSFER,
        { input: { sourcePrepaidId, amount: 100 } },
        thief.sessionToken,
      );
      expect(data!.transfer).toMatchObject({
        __typename: 'TransferNotAllowedError',
        code: 'TRANSFER_NOT_ALLOWED',
      });
    }
    expect(await harness().balanceOf(victimId)).toBe(1_000);
    expect(await harness().balanceOf(ownId)).toBe(0);
  });

  test('rejects more than the card holds and an invalid card', async () => {
    const member = await signUp(harness(), 'more');
    const [card] = await harness().issueCards(1, 500);

    const tooMuch = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: card, amount: 501 } },
      member.sessionToken,
    );
    const invalid = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: '4111111111111111' } },
      member.sessionToken,
    );

    expect(tooMuch.data!.transfer).toMatchObject({ code: 'INSUFFICIENT_BALANCE', available: 500 });
    expect(invalid.data!.transfer.code).toBe('INVALID_PREPAID_ID');
    expect(await harness().balanceOf(card!)).toBe(500);
  });

  test('keeps the wallet within the maximum balance', async () => {
    const member = await signUp(harness(), 'maximum');
    const [big, small] = await harness().issueCards(2, 3_000);
    await harness().request(TRANSFER, { input: { sourcePrepaidId: big } }, member.sessionToken);

    const { data } = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: small } },
      member.sessionToken,
    );

    expect(data!.transfer).toMatchObject({ code: 'WALLET_BALANCE_LIMIT_EXCEEDED' });
    expect(data!.transfer.message).toContain('5000');
    expect(await harness().balanceOf(small!)).toBe(3_000);
  });

  test('a retried transfer with its key moves points once', async () => {
    const member = await signUp(harness(), 'retry');
    const [card] = await harness().issueCards(1, 1_000);
    const input = { sourcePrepaidId: card, amount: 250, idempotencyKey: newKeyFor('transfer') };

    const results = await Promise.all(
      [1, 2, 3].map(() => harness().request(TRANSFER, { input }, member.sessionToken)),
    );

    expect(results.filter((result) => result.data!.transfer.replayed === false)).toHaveLength(1);
    expect(await harness().balanceOf(card!)).toBe(750);
  });

  test('an unverified wallet cannot receive', async () => {
    const identity = {
      email: `unverified${process.pid}@example.test`,
      username: `unverified${process.pid}`,
      password: 'an unverified passphrase',
    };
    await harness().request(
      'mutation R($i: RegisterInput!) { register(input: $i) { __typename } }',
      { i: identity },
    );
    const session = (
      await harness().request(
        'mutation L($i: LoginInput!) { login(input: $i) { ... on LoginSuccess { sessionToken } } }',
        { i: { login: identity.username, password: identity.password } },
      )
    ).data!.login.sessionToken;
    const [card] = await harness().issueCards(1, 100);

    const { data } = await harness().request(
      TRANSFER,
      { input: { sourcePrepaidId: card } },
      session,
    );

    expect(data!.transfer.code).toBe('WALLET_UNAVAILABLE');
    expect(await harness().balanceOf(card!)).toBe(100);
  });
});
