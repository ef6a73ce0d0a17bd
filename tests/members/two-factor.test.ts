import { currentTotpCode } from '../../src/members/totp';
import { useHarness } from '../support/harness';
import {
  COMPLETE_LOGIN,
  enableTwoFactor,
  freshTotpCode,
  LOGIN,
  signIn,
  signUp,
} from '../support/members';

const harness = useHarness({}, { smtp: true });

async function challenge(login: string, password: string): Promise<string> {
  const { data } = await harness().request(LOGIN, { input: { login, password } });
  expect(data!.login.__typename).toBe('TwoFactorRequired');
  return data!.login.challengeToken;
}

async function complete(challengeToken: string, code: string) {
  const { data, errors } = await harness().request(COMPLETE_LOGIN, {
    input: { challengeToken, code },
  });
  return data?.completeLogin ?? errors;
}

describe('TOTP sign-in', () => {
  test('accepts a code once, also across sign-ins', async () => {
    const member = await signUp(harness(), 'totp');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const code = freshTotpCode(harness(), secret);

    const first = await complete(await challenge(member.username, member.password), code);
    expect(first.__typename).toBe('LoginSuccess');
    await harness().request('mutation { logout { endedSessions } }', {}, first.sessionToken);
    const second = await complete(await challenge(member.username, member.password), code);

    expect(second).toMatchObject({
      __typename: 'InvalidTwoFactorCodeError',
      code: 'INVALID_TWO_FACTOR_CODE',
    });
  });

  test('rejects a code of an earlier step than one already used', async () => {
    const member = await signUp(harness(), 'earlier');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const older = currentTotpCode(secret, harness().services.clock.now());
    const newer = freshTotpCode(harness(), secret);

    expect(
      (await complete(await challenge(member.username, member.password), newer)).__typename,
    ).toBe('LoginSuccess');
    expect((await complete(await challenge(member.username, member.password), older)).code).toBe(
      'INVALID_TWO_FACTOR_CODE',
    );
  });

  test('accepts a recovery code once', async () => {
    const member = await signUp(harness(), 'recovery');
    const { recoveryCodes } = await enableTwoFactor(harness(), member.sessionToken);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    const first = await complete(
      await challenge(member.username, member.password),
      recoveryCodes[3]!.toLowerCase(),
    );
    const second = await complete(
      await challenge(member.username, member.password),
      recoveryCodes[3]!,
    );

    expect(first.__typename).toBe('LoginSuccess');
    expect(second.code).toBe('INVALID_TWO_FACTOR_CODE');
    expect(
      await harness().count(`SELECT count(*) FROM audit_log WHERE action = 'recovery_code_used'`),
    ).toBeGreaterThanOrEqual(1);
  });

  test('a challenge yields one session only', async () => {
    const member = await signUp(harness(), 'single');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const challengeToken = await challenge(member.username, member.password);

    const first = await complete(challengeToken, freshTotpCode(harness(), secret));
    const second = await complete(challengeToken, freshTotpCode(harness(), secret));

    expect(first.__typename).toBe('LoginSuccess');
    expect(second).toMatchObject({
      __typename: 'LoginChallengeInvalidError',
      code: 'LOGIN_CHALLENGE_INVALID',
    });
  });

  test('20 wrong codes as aliases hit the limit, then the right code is refused', async () => {
    const member = await signUp(harness(), 'aliases');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const challengeToken = await challenge(member.username, member.password);
    const aliases = Array.from(
      { length: 20 },
      (_, index) =>
        `a${index}: completeLogin(input: { challengeToken: "${challengeToken}", code: "${String(index).padStart(6, '0')}" }) { __typename ... on UserError { code } }`,
    ).join('\n');

    const { data, errors } = await harness().request(`mutation { ${aliases} }`);
    const right = await complete(challengeToken, freshTotpCode(harness(), secret));

    const checked = Object.values(data ?? {}).filter((value) => value !== null);
    expect(checked).toHaveLength(5);
    for (const result of checked)
      expect(result).toEqual({
        __typename: 'InvalidTwoFactorCodeError',
        code: 'INVALID_TWO_FACTOR_CODE',
      });
    expect(errors).toHaveLength(15);
    for (const error of errors!) {
      expect(error.extensions!.code).toBe('RATE_LIMITED');
      expect(error.extensions!.retryAfterSeconds).toBeGreaterThan(0);
    }
    expect(right[0].extensions.code).toBe('RATE_LIMITED');
  });

  test('disabling needs the password and a code', async () => {
    const member = await signUp(harness(), 'disable');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const disable = `mutation D($input: DisableTotpInput!) { disableTotp(input: $input) { __typename ... on UserError { code } } }`;

    const wrongPassword = await harness().request(
      disable,
      { input: { password: 'not the password', code: freshTotpCode(harness(), secret) } },
      member.sessionToken,
    );
    const wrongCode = await harness().request(
      disable,
      { input: { password: member.password, code: '000000' } },
      member.sessionToken,
    );
    const done = await harness().request(
      disable,
      { input: { password: member.password, code: freshTotpCode(harness(), secret) } },
      member.sessionToken,
    );

    expect(wrongPassword.data!.disableTotp.code).toBe('INVALID_CREDENTIALS');
    expect(wrongCode.data!.disableTotp.code).toBe('INVALID_TWO_FACTOR_CODE');
    expect(done.data!.disableTotp.__typename).toBe('TwoFactorDisabled');
    const { data } = await harness().request(LOGIN, {
      input: { login: member.username, password: member.password },
    });
    expect(data!.login.__typename).toBe('LoginSuccess');
  });

  test('enrolment returns a secret, an otpauth URI and a QR code', async () => {
    const member = await signUp(harness(), 'enrol');
    const { data } = await harness().request(
      'mutation { enrollTotp { ... on TotpEnrollment { secret otpauthUri qrCodeDataUrl } } }',
      {},
      member.sessionToken,
    );

    expect(data!.enrollTotp.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(data!.enrollTotp.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(data!.enrollTotp.otpauthUri).toContain(`secret=${data!.enrollTotp.secret}`);
    expect(data!.enrollTotp.qrCodeDataUrl).toMatch(/^data:image\/png;base64,/);
    const wrong = await harness().request(
      'mutation { confirmTotp(code: "123456") { __typename } }',
      {},
      member.sessionToken,
    );
    expect(wrong.data!.confirmTotp.__typename).toBe('InvalidTwoFactorCodeError');
  });

  test('stores the TOTP secret encrypted', async () => {
    const member = await signUp(harness(), 'atrest');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);

    const row = await harness()
      .sql()
      .one<{ dump: string }>(
        'SELECT row_to_json(m)::text AS dump FROM member m WHERE username = ?',
        [member.username],
      );
    expect(row!.dump).not.toContain(secret);
    expect(row!.dump).not.toContain(Buffer.from(secret).toString('hex'));
  });

  test('sign-in without a code still works without 2FA', async () => {
    const member = await signUp(harness(), 'plain');
    expect(await signIn(harness(), member.email, member.password)).toMatch(/^ms_/);
  });
});
