import { DEFAULT_LIMITS } from '../../src/rate-limit/rate-limits';
import { Harness } from '../support/harness';
import { COMPLETE_LOGIN, enableTwoFactor, freshTotpCode, LOGIN, signUp } from '../support/members';

// Default limits for sign-in and passwords; registrations are raised so that
// each test can sign up members of its own.
let harness: Harness;
beforeAll(async () => {
  harness = await Harness.start(
    {
      RATE_LIMITS: JSON.stringify({ registrationPerIp: { points: 1_000, durationSeconds: 3_600 } }),
    },
    { smtp: true },
  );
});
afterAll(async () => {
  await harness.stop();
});

describe('rate limit regressions', () => {
  test('right passwords do not use up the sign-in limit', async () => {
    const member = await signUp(harness, 'often');

    for (let attempt = 0; attempt < DEFAULT_LIMITS.loginPerAccount.points + 2; attempt++) {
      const { data } = await harness.request(LOGIN, {
        input: { login: member.username, password: member.password },
      });
      expect(data!.login.__typename).toBe('LoginSuccess');
    }
  });

  test('two-factor sign-ins reset the account limit', async () => {
    const member = await signUp(harness, 'twofactor');
    const { secret } = await enableTwoFactor(harness, member.sessionToken);

    for (let attempt = 0; attempt < DEFAULT_LIMITS.loginPerAccount.points + 2; attempt++) {
      const login = await harness.request(LOGIN, {
        input: { login: member.username, password: member.password },
      });
      expect(login.errors).toBeUndefined();
      expect(login.data!.login.__typename).toBe('TwoFactorRequired');
      const completed = await harness.request(COMPLETE_LOGIN, {
        input: {
          challengeToken: login.data!.login.challengeToken,
          code: freshTotpCode(harness, secret),
        },
      });
      expect(completed.data!.completeLogin.__typename).toBe('LoginSuccess');
    }
  });

  test('a Unicode case variant of a name neither signs in nor escapes the limit', async () => {
    const member = await signUp(harness, 'iris');
    const variant = member.username.replace('i', 'İ');

    const { data } = await harness.request(LOGIN, {
      input: { login: variant, password: member.password },
    });
    const reset = await harness.request(
      'mutation R($e: String!) { requestPasswordReset(email: $e) { message } }',
      { e: member.email.replace('i', 'İ') },
    );

    expect(data!.login.code).toBe('INVALID_CREDENTIALS');
    expect(reset.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email' });
  });

  test('password guesses by a signed-in member are limited', async () => {
    const member = await signUp(harness, 'guesser');
    const guess = (index: number) =>
      `g${index}: changePassword(input: { currentPassword: "guess number ${index}", newPassword: "an entirely new passphrase" }) { __typename }`;

    const response = await harness.request(
      `mutation { ${Array.from({ length: 12 }, (_, index) => guess(index)).join(' ')} }`,
      {},
      member.sessionToken,
    );

    const answered = Object.values(response.data!).filter((value) => value !== null);
    expect(answered).toHaveLength(DEFAULT_LIMITS.passwordPerAccount.points);
    expect(response.errors!.map((error) => error.extensions!.code)).toEqual([
      'RATE_LIMITED',
      'RATE_LIMITED',
    ]);
  });
});
