import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import {
  LOGIN,
  newIdentity,
  REGISTER,
  signIn,
  signUp,
  tokenFromMail,
  VIEWER,
} from '../support/members';

const harness = useHarness({}, { smtp: true });

const RESET = `mutation R($email: String!) { requestPasswordReset(email: $email) { message } }`;
const REMINDER = `mutation R($email: String!) { requestUsernameReminder(email: $email) { message } }`;
const RESEND = `mutation R($email: String!) { resendVerification(email: $email) { message } }`;

async function timed<T>(action: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const result = await action();
  return [result, Number(process.hrtime.bigint() - started) / 1e6];
}

describe('no account enumeration', () => {
  test('registering a taken address or username answers like a new one', async () => {
    const owner = await signUp(harness(), 'owner');
    const fresh = newIdentity('fresh');
    const mailsBefore = harness().smtp.mails.length;

    const newOne = await harness().request(REGISTER, { input: fresh });
    const takenAddress = await harness().request(REGISTER, {
      input: { ...newIdentity('other'), email: owner.email.toUpperCase() },
    });
    const takenUsername = await harness().request(REGISTER, {
      input: { ...newIdentity('third'), username: owner.username },
    });

    expect(takenAddress.data).toEqual(newOne.data);
    expect(takenUsername.data).toEqual(newOne.data);
    await waitFor(() => harness().smtp.mails.length >= mailsBefore + 3, 5_000, 'three mails');
    const toOwner = harness().smtp.mailsTo(owner.email).at(-1)!;
    expect(toOwner.subject).toMatch(/tried to register/i);
    expect(toOwner.text).not.toMatch(/ev_/);
    const third = harness()
      .smtp.mails.slice(mailsBefore)
      .find((mail) => mail.subject.match(/username/i));
    expect(third!.text).toContain(owner.username);
    expect(
      await harness().count('SELECT count(*) FROM member WHERE lower(email) = lower(?)', [
        owner.email,
      ]),
    ).toBe(1);
  });

  test('reset and reminder answer the same for known and unknown addresses', async () => {
    const member = await signUp(harness(), 'known');
    const unknown = newIdentity('unknown').email;

    for (const mutation of [RESET, REMINDER, RESEND]) {
      const [known, knownMs] = await timed(() =>
        harness().request(mutation, { email: member.email }),
      );
      const [other, otherMs] = await timed(() => harness().request(mutation, { email: unknown }));
      expect(other.data).toEqual(known.data);
      expect(other.status).toBe(known.status);
      // The work differs by a row or two, not by a password hash.
      expect(Math.abs(knownMs - otherMs)).toBeLessThan(250);
    }
    await waitFor(
      () =>
        harness()
          .smtp.mailsTo(member.email)
          .some((mail) => mail.text.includes(member.username) && /username/i.test(mail.subject)),
      5_000,
      'reminder',
    );
    expect(harness().smtp.mailsTo(unknown)).toEqual([]);
  });

  test('login answers the same for unknown users and wrong passwords, in similar time', async () => {
    const member = await signUp(harness(), 'timing');

    const [wrong, wrongMs] = await timed(() =>
      harness().request(LOGIN, {
        input: { login: member.username, password: 'wrong password 123' },
      }),
    );
    const [unknown, unknownMs] = await timed(() =>
      harness().request(LOGIN, {
        input: { login: 'nobody-at-all', password: 'wrong password 123' },
      }),
    );

    expect(unknown.data).toEqual(wrong.data);
    expect(wrong.data!.login).toEqual({
      __typename: 'InvalidCredentialsError',
      code: 'INVALID_CREDENTIALS',
      message: 'The login or password is wrong',
    });
    // Both run one argon2id verification; without the dummy hash the unknown
    // user would answer in a few milliseconds.
    expect(unknownMs).toBeGreaterThan(wrongMs * 0.4);
  });
});

describe('password rules', () => {
  test.each([
    ['too short', { password: 'Sh0rt!pw' }, 'TOO_SHORT'],
    ['too long', { password: 'x'.repeat(129) }, 'TOO_LONG'],
    ['common', { password: 'password1234' }, 'COMMON'],
    [
      'with the username',
      { username: 'kazuki77', password: 'my-kazuki77-secret' },
      'CONTAINS_USERNAME',
    ],
    [
      'with the e-mail name',
      { email: 'hanako.y@example.test', password: 'HANAKO.Y rules 2026' },
      'CONTAINS_EMAIL',
    ],
  ])('rejects a password %s', async (_case, override, reason) => {
    const input = { ...newIdentity('weak'), ...override };

    const { data } = await harness().request(REGISTER, { input });

    expect(data!.register).toMatchObject({
      __typename: 'PasswordRejectedError',
      code: 'PASSWORD_REJECTED',
      reason,
    });
    expect(data!.register.message.length).toBeGreaterThan(10);
    expect(
      await harness().count('SELECT count(*) FROM member WHERE username = ?', [input.username]),
    ).toBe(0);
  });

  test('rejects a malformed address and username', async () => {
    const badEmail = await harness().request(REGISTER, {
      input: { ...newIdentity(), email: 'not-an-address' },
    });
    const badName = await harness().request(REGISTER, {
      input: { ...newIdentity(), username: 'no spaces allowed' },
    });

    expect(badEmail.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'email',
    });
    expect(badName.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'username',
    });
  });
});

describe('unverified wallet', () => {
  test('cannot pay until the address is verified', async () => {
    const identity = newIdentity('unverified');
    await harness().request(REGISTER, { input: identity });
    const session = await signIn(harness(), identity.username, identity.password);
    const viewer = await harness().request(VIEWER, {}, session);
    expect(viewer.data!.viewer).toMatchObject({ emailVerified: false, wallet: { canPay: false } });
    const digits = await harness().services.wallets.revealPrepaidId(
      harness().sql(),
      (await harness()
        .sql()
        .one<{ id: string }>('SELECT id FROM member WHERE username = ?', [identity.username]))!.id,
    );
    await harness().fund(digits, 1_000);
    const merchant = await harness().createMerchant();

    const before = await harness().request(CHARGE, chargeInput(digits, 100), merchant.key);
    const token = await tokenFromMail(harness(), identity.email, 'ev_');
    await harness().request('mutation V($t: String!) { verifyEmail(token: $t) { __typename } }', {
      t: token,
    });
    const after = await harness().request(CHARGE, chargeInput(digits, 100), merchant.key);

    expect(before.data!.charge.code).toBe('INVALID_PREPAID_ID');
    expect(after.data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 900 });
  });
});
