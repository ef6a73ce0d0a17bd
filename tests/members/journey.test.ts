import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import {
  COMPLETE_LOGIN,
  enableTwoFactor,
  LOGIN,
  newIdentity,
  REGISTER,
  tokenFromMail,
  freshTotpCode,
  VERIFY_EMAIL,
  VIEWER,
  walletPrepaidId,
} from '../support/members';

const harness = useHarness({}, { smtp: true });

const HISTORY = `
  query History($first: Int, $after: String) {
    viewer { wallet { history(first: $first, after: $after) {
      edges { node { kind amount direction balanceAfter merchantName orderReference } }
      pageInfo { hasNextPage endCursor }
    } } }
  }`;

const BALANCE_CHANGED = `
  subscription { balanceChanged { balancePosted balanceAvailable transaction { kind amount direction merchantName } } }`;

describe('member journey', () => {
  test('register, verify, 2FA, get charged, watch live, withdraw', async () => {
    const identity = newIdentity('journey');

    const registered = await harness().request(REGISTER, { input: identity });
    expect(registered.data!.register.__typename).toBe('RequestAccepted');
    const verificationToken = await tokenFromMail(harness(), identity.email, 'ev_');
    const verified = await harness().request(VERIFY_EMAIL, { token: verificationToken });
    expect(verified.data!.verifyEmail.__typename).toBe('EmailVerified');
    const reused = await harness().request(VERIFY_EMAIL, { token: verificationToken });
    expect(reused.data!.verifyEmail).toMatchObject({ code: 'TOKEN_INVALID' });

    const firstLogin = await harness().request(LOGIN, {
      input: { login: identity.email, password: identity.password },
    });
    expect(firstLogin.data!.login.__typename).toBe('LoginSuccess');
    const { secret } = await enableTwoFactor(harness(), firstLogin.data!.login.sessionToken);

    const challenge = await harness().request(LOGIN, {
      input: { login: identity.username, password: identity.password },
    });
    expect(challenge.data!.login.__typename).toBe('TwoFactorRequired');
    const completed = await harness().request(COMPLETE_LOGIN, {
      input: {
        challengeToken: challenge.data!.login.challengeToken,
        code: freshTotpCode(harness(), secret),
      },
    });
    expect(completed.data!.completeLogin.__typename).toBe('LoginSuccess');
    const session = completed.data!.completeLogin.sessionToken as string;

    const viewer = await harness().request(VIEWER, {}, session);
    expect(viewer.data!.viewer).toMatchObject({
      username: identity.username,
      email: identity.email,
      emailVerified: true,
      twoFactorEnabled: true,
      role: 'MEMBER',
      wallet: {
        status: 'ACTIVE',
        canPay: true,
        balancePosted: 0,
        balanceHeld: 0,
        balanceAvailable: 0,
      },
    });
    expect(viewer.data!.viewer.wallet.prepaidId).toMatch(/^\*{4} \*{4} \*{4} \d{4}$/);

    const walletId = await walletPrepaidId(harness(), session, freshTotpCode(harness(), secret));
    expect(walletId).toMatch(/^\d{16}$/);
    expect(viewer.data!.viewer.wallet.prepaidId.slice(-4)).toBe(walletId.slice(-4));
    await harness().fund(walletId, 5_000);

    const before = harness().services.hub.activeCount;
    const events: any[] = [];
    harness()
      .wsClient(session)
      .subscribe(
        { query: BALANCE_CHANGED },
        {
          next: (message) => events.push(message),
          error: () => undefined,
          complete: () => undefined,
        },
      );
    await harness().waitForSubscribers(before + 1);

    const merchant = await harness().createMerchant('Ramen Shop');
    const charge = await harness().request(
      CHARGE,
      chargeInput(walletId, 1_200, { orderReference: 'ramen-1' }),
      merchant.key,
    );
    expect(charge.data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 3_800 });

    await waitFor(() => events.length >= 1, 5_000, 'balance event');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events).toHaveLength(1);
    expect(events[0].data.balanceChanged).toEqual({
      balancePosted: 3_800,
      balanceAvailable: 3_800,
      transaction: {
        kind: 'CHARGE',
        amount: 1_200,
        direction: 'DEBIT',
        merchantName: 'Ramen Shop',
      },
    });

    const history = await harness().request(HISTORY, { first: 10 }, session);
    expect(history.data!.viewer.wallet.history.edges.map((edge: any) => edge.node)).toEqual([
      {
        kind: 'CHARGE',
        amount: 1_200,
        direction: 'DEBIT',
        balanceAfter: 3_800,
        merchantName: 'Ramen Shop',
        orderReference: 'ramen-1',
      },
      {
        kind: 'ADJUSTMENT',
        amount: 5_000,
        direction: 'CREDIT',
        balanceAfter: 5_000,
        merchantName: null,
        orderReference: null,
      },
    ]);

    const preview = await harness().request(
      '{ withdrawalPreview { forfeitAmount held } }',
      {},
      session,
    );
    expect(preview.data!.withdrawalPreview).toEqual({ forfeitAmount: 3_800, held: 0 });
    const wrongAmount = await harness().request(
      'mutation W($input: WithdrawInput!) { withdraw(input: $input) { __typename ... on ForfeitAmountMismatchError { amount } } }',
      {
        input: {
          password: identity.password,
          twoFactorCode: freshTotpCode(harness(), secret),
          confirmForfeitAmount: 3_000,
        },
      },
      session,
    );
    expect(wrongAmount.data!.withdraw).toEqual({
      __typename: 'ForfeitAmountMismatchError',
      amount: 3_800,
    });
    const withdrawn = await harness().request(
      'mutation W($input: WithdrawInput!) { withdraw(input: $input) { __typename ... on Withdrawn { forfeited } ... on UserError { code } } }',
      {
        input: {
          password: identity.password,
          twoFactorCode: freshTotpCode(harness(), secret),
          confirmForfeitAmount: 3_800,
        },
      },
      session,
    );
    expect(withdrawn.data!.withdraw).toEqual({ __typename: 'Withdrawn', forfeited: 3_800 });

    const afterCharge = await harness().request(CHARGE, chargeInput(walletId, 100), merchant.key);
    expect(afterCharge.data!.charge.code).toBe('INVALID_PREPAID_ID');
    const oldSession = await harness().request(VIEWER, {}, session);
    expect(oldSession.status).toBe(401);
    const loginAgain = await harness().request(LOGIN, {
      input: { login: identity.username, password: identity.password },
    });
    expect(loginAgain.data!.login.code).toBe('INVALID_CREDENTIALS');
    await waitFor(
      () => harness().services.hub.activeCount === before,
      5_000,
      'the subscription to close',
    );

    const forfeiture = await harness().services.ledger.operatorAccountId(
      harness().sql(),
      'forfeiture',
    );
    expect(await harness().accountBalance(forfeiture)).toBe(3_800);
    const member = await harness()
      .sql()
      .one<Record<string, unknown>>(
        `SELECT email, username, password_hash, totp_secret, status FROM member m
        WHERE NOT EXISTS (SELECT 1 FROM member o WHERE o.id <> m.id AND o.created_at > m.created_at)`,
      );
    expect(member).toEqual({
      email: null,
      username: null,
      password_hash: null,
      totp_secret: null,
      status: 'withdrawn',
    });

    // The address and username can be registered again.
    const again = await harness().request(REGISTER, {
      input: { ...identity, password: `${identity.password}!` },
    });
    expect(again.data!.register.__typename).toBe('RequestAccepted');
    const newToken = await tokenFromMail(
      harness(),
      identity.email,
      'ev_',
      harness().smtp.mails.length - 1,
    );
    expect(newToken).not.toBe(verificationToken);
  });
});
