import { CHARGE, chargeInput, newKey, REFUND, useHarness, waitFor } from '../support/harness';
import {
  COMPLETE_LOGIN,
  enableTwoFactor,
  freshTotpCode,
  LOGIN,
  newIdentity,
  REGISTER,
  signIn,
  signUp,
  tokenFromMail,
  walletPrepaidId,
} from '../support/members';

const harness = useHarness({ DATABASE_POOL_MAX: '4' }, { smtp: true });

const WITHDRAW = `mutation W($input: WithdrawInput!) { withdraw(input: $input) { __typename ... on Withdrawn { forfeited } ... on UserError { code } } }`;

describe('member regressions', () => {
  test('parallel two-factor checks do not exhaust the connection pool', async () => {
    const member = await signUp(harness(), 'pool');
    await enableTwoFactor(harness(), member.sessionToken);
    const reveal = 'mutation { revealPrepaidId(twoFactorCode: "000000") { __typename } }';

    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 15 }, () => harness().request(reveal, {}, member.sessionToken)),
    );

    expect(Date.now() - started).toBeLessThan(10_000);
    for (const result of results) {
      const answer =
        result.data?.revealPrepaidId?.__typename ?? result.errors?.[0]?.extensions?.code;
      expect(['InvalidTwoFactorCodeError', 'RATE_LIMITED']).toContain(answer);
    }
    const ready = await fetch(harness().server.url.replace('/graphql', '/readyz'));
    expect(ready.status).toBe(200);
  });

  test('a refund after withdrawal is forfeited, not put in the closed wallet', async () => {
    const member = await signUp(harness(), 'closed');
    const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
    await harness().fund(prepaidId, 1_000);
    const merchant = await harness().createMerchant();
    const charge = await harness().request(CHARGE, chargeInput(prepaidId, 200), merchant.key);
    await harness().request(
      WITHDRAW,
      { input: { password: member.password, confirmForfeitAmount: 800 } },
      member.sessionToken,
    );
    const forfeiture = await harness().services.ledger.operatorAccountId(
      harness().sql(),
      'forfeiture',
    );
    const forfeitedBefore = await harness().accountBalance(forfeiture);

    const refund = await harness().request(
      REFUND,
      { input: { transactionId: charge.data!.charge.transaction.id, idempotencyKey: newKey() } },
      merchant.key,
    );

    expect(refund.data!.refund.__typename).toBe('RefundSuccess');
    expect(await harness().balanceOf(prepaidId)).toBe(0);
    expect(await harness().accountBalance(forfeiture)).toBe(forfeitedBefore + 200);
    expect(await harness().accountBalance(merchant.settlementAccountId)).toBe(0);
  });

  test('concurrent withdrawals close the account once', async () => {
    const member = await signUp(harness(), 'twice');

    const results = await Promise.all(
      [1, 2, 3, 4].map(() =>
        harness().request(
          WITHDRAW,
          { input: { password: member.password, confirmForfeitAmount: 0 } },
          member.sessionToken,
        ),
      ),
    );

    const answers = results.map(
      (result) => result.data?.withdraw?.__typename ?? result.errors?.[0]?.extensions?.code,
    );
    expect(answers.filter((answer) => answer === 'Withdrawn')).toHaveLength(1);
    expect(
      await harness().count(
        `SELECT count(*) FROM audit_log WHERE action = 'withdrawal' AND actor_member_id IS NOT NULL AND details->>'forfeited' = '0'`,
      ),
    ).toBe(1);
  });

  test('a password reset ends pending sign-in challenges', async () => {
    const member = await signUp(harness(), 'challenge');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const login = await harness().request(LOGIN, {
      input: { login: member.username, password: member.password },
    });
    const mailsBefore = harness().smtp.mails.length;
    await harness().request(
      'mutation R($e: String!) { requestPasswordReset(email: $e) { message } }',
      { e: member.email },
    );
    const token = await tokenFromMail(harness(), member.email, 'pr_', mailsBefore);
    await harness().request(
      'mutation R($i: ResetPasswordInput!) { resetPassword(input: $i) { __typename } }',
      {
        i: { token, newPassword: 'a reset passphrase 77' },
      },
    );

    const { data } = await harness().request(COMPLETE_LOGIN, {
      input: {
        challengeToken: login.data!.login.challengeToken,
        code: freshTotpCode(harness(), secret),
      },
    });

    expect(data!.completeLogin.code).toBe('LOGIN_CHALLENGE_INVALID');
  });

  test('a password change voids an unused reset token', async () => {
    const member = await signUp(harness(), 'voided');
    const mailsBefore = harness().smtp.mails.length;
    await harness().request(
      'mutation R($e: String!) { requestPasswordReset(email: $e) { message } }',
      { e: member.email },
    );
    const token = await tokenFromMail(harness(), member.email, 'pr_', mailsBefore);
    await harness().request(
      'mutation C($i: ChangePasswordInput!) { changePassword(input: $i) { __typename } }',
      { i: { currentPassword: member.password, newPassword: 'the changed passphrase' } },
      member.sessionToken,
    );

    const { data } = await harness().request(
      'mutation R($i: ResetPasswordInput!) { resetPassword(input: $i) { __typename ... on UserError { code } } }',
      { i: { token, newPassword: 'an attacker passphrase' } },
    );

    expect(data!.resetPassword.code).toBe('TOKEN_INVALID');
    await signIn(harness(), member.username, 'the changed passphrase');
  });

  test('rejects lone surrogates and non-ASCII addresses', async () => {
    const identity = newIdentity('surrogate');

    const email = await harness().request(REGISTER, {
      input: { ...identity, email: `a\ud800${identity.email}` },
    });
    const accented = await harness().request(REGISTER, {
      input: { ...identity, email: `é${identity.email}` },
    });
    const password = await harness().request(REGISTER, {
      input: { ...identity, password: `long password \ud800 here` },
    });

    expect(email.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email' });
    expect(accented.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'email',
    });
    expect(password.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'password',
    });
  });

  test('removes a sent mail body, which holds a token', async () => {
    const member = await signUp(harness(), 'bodies');

    await waitFor(
      async () =>
        (await harness().count(
          `SELECT count(*) FROM mail_outbox WHERE to_address = ? AND status = 'sent'`,
          [member.email],
        )) >= 1,
      5_000,
      'the mail to be marked sent',
    );
    const bodies = await harness()
      .sql()
      .query<{ body_text: string }>('SELECT body_text FROM mail_outbox WHERE to_address = ?', [
        member.email,
      ]);

    for (const { body_text } of bodies) expect(body_text).not.toMatch(/ev_|pr_/);
  });
});
