import { useHarness } from '../support/harness';
import {
  enableTwoFactor,
  freshTotpCode,
  signIn,
  signUp,
  tokenFromMail,
  VIEWER,
} from '../support/members';

const harness = useHarness({}, { smtp: true });

const SESSIONS = `{ viewer { sessions { id current ip userAgent } } }`;
const CHANGE = `mutation C($input: ChangePasswordInput!) { changePassword(input: $input) { __typename ... on PasswordChanged { endedSessions } ... on UserError { code } } }`;

async function status(token: string): Promise<number> {
  return (await harness().request(VIEWER, {}, token)).status;
}

describe('sessions', () => {
  test('lists the live sessions and ends one', async () => {
    const member = await signUp(harness(), 'list');
    const second = await signIn(harness(), member.username, member.password);

    const { data } = await harness().request(SESSIONS, {}, member.sessionToken);
    const other = data!.viewer.sessions.find((session: any) => !session.current);
    const ended = await harness().request(
      'mutation E($id: String!) { endSession(sessionId: $id) { endedSessions } }',
      { id: other.id },
      member.sessionToken,
    );

    expect(data!.viewer.sessions).toHaveLength(2);
    expect(data!.viewer.sessions.filter((session: any) => session.current)).toHaveLength(1);
    expect(ended.data!.endSession.endedSessions).toBe(1);
    expect(await status(second)).toBe(401);
    expect(await status(member.sessionToken)).toBe(200);
  });

  test("cannot end another member's session", async () => {
    const alice = await signUp(harness(), 'alice');
    const bob = await signUp(harness(), 'bob');
    const { data } = await harness().request(SESSIONS, {}, bob.sessionToken);

    const attempt = await harness().request(
      'mutation E($id: String!) { endSession(sessionId: $id) { endedSessions } }',
      { id: data!.viewer.sessions[0].id },
      alice.sessionToken,
    );

    expect(attempt.data!.endSession.endedSessions).toBe(0);
    expect(await status(bob.sessionToken)).toBe(200);
  });

  test('logout everywhere ends every session', async () => {
    const member = await signUp(harness(), 'everywhere');
    const second = await signIn(harness(), member.email, member.password);

    const { data } = await harness().request(
      'mutation { logoutEverywhere { endedSessions } }',
      {},
      member.sessionToken,
    );

    expect(data!.logoutEverywhere.endedSessions).toBe(2);
    expect(await status(member.sessionToken)).toBe(401);
    expect(await status(second)).toBe(401);
  });

  test('an idle or expired session is rejected', async () => {
    const member = await signUp(harness(), 'idle');
    const idle = await signIn(harness(), member.username, member.password);
    const old = await signIn(harness(), member.username, member.password);
    await harness()
      .sql()
      .query(
        `UPDATE member_session SET last_used_at = now() - interval '31 minutes'
        WHERE id = (SELECT id FROM member_session WHERE ended_at IS NULL ORDER BY created_at DESC OFFSET 1 LIMIT 1)`,
      );
    await harness()
      .sql()
      .query(
        `UPDATE member_session SET expires_at = now() - interval '1 second'
        WHERE id = (SELECT id FROM member_session WHERE ended_at IS NULL ORDER BY created_at DESC LIMIT 1)`,
      );

    expect(await status(idle)).toBe(401);
    expect(await status(old)).toBe(401);
    expect(await status(member.sessionToken)).toBe(200);
  });

  // The sweep of open connections asked only whether a session had ended or
  // expired, so an idle session kept its sockets, and touching it revived it.
  test('sweep treats an idle session as ended', async () => {
    const member = await signUp(harness(), 'idle-sweep');
    const sessions = harness().services.sessions;
    const [row] = await harness()
      .sql()
      .query<{ id: string }>(
        `UPDATE member_session SET last_used_at = now() - interval '31 minutes'
          WHERE member_id = (SELECT id FROM member WHERE username = ?) RETURNING id`,
        [member.username],
      );

    const live = await sessions.liveSessionIds(harness().sql(), [row!.id]);
    await sessions.touch(harness().sql(), [row!.id]);

    expect([...live]).toEqual([]);
    expect(await status(member.sessionToken)).toBe(401);
  });

  test('stores session tokens only as hashes', async () => {
    const member = await signUp(harness(), 'hashed');

    const dump = await harness()
      .sql()
      .query<{ row: string }>('SELECT row_to_json(s)::text AS row FROM member_session s');

    expect(dump.map((entry) => entry.row).join('\n')).not.toContain(member.sessionToken.slice(3));
  });
});

describe('password change and reset', () => {
  test('a change ends every other session', async () => {
    const member = await signUp(harness(), 'change');
    const other = await signIn(harness(), member.username, member.password);

    const { data } = await harness().request(
      CHANGE,
      { input: { currentPassword: member.password, newPassword: 'a brand new passphrase 9' } },
      member.sessionToken,
    );

    expect(data!.changePassword).toEqual({ __typename: 'PasswordChanged', endedSessions: 1 });
    expect(await status(other)).toBe(401);
    expect(await status(member.sessionToken)).toBe(200);
    await signIn(harness(), member.username, 'a brand new passphrase 9');
  });

  test('a change needs the current password, and a code with 2FA', async () => {
    const member = await signUp(harness(), 'changetfa');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);
    const newPassword = 'another fine passphrase';

    const wrong = await harness().request(
      CHANGE,
      { input: { currentPassword: 'wrong one here', newPassword } },
      member.sessionToken,
    );
    const noCode = await harness().request(
      CHANGE,
      { input: { currentPassword: member.password, newPassword } },
      member.sessionToken,
    );
    const done = await harness().request(
      CHANGE,
      {
        input: {
          currentPassword: member.password,
          newPassword,
          twoFactorCode: freshTotpCode(harness(), secret),
        },
      },
      member.sessionToken,
    );

    expect(wrong.data!.changePassword.code).toBe('INVALID_CREDENTIALS');
    expect(noCode.data!.changePassword.code).toBe('TWO_FACTOR_CODE_REQUIRED');
    expect(done.data!.changePassword.__typename).toBe('PasswordChanged');
  });

  test('a reset works once and ends every session', async () => {
    const member = await signUp(harness(), 'reset');
    const mailsBefore = harness().smtp.mails.length;

    await harness().request(
      'mutation R($e: String!) { requestPasswordReset(email: $e) { message } }',
      { e: member.email },
    );
    const token = await tokenFromMail(harness(), member.email, 'pr_', mailsBefore);
    const reset = `mutation R($input: ResetPasswordInput!) { resetPassword(input: $input) { __typename ... on UserError { code } } }`;
    const first = await harness().request(reset, {
      input: { token, newPassword: 'reset passphrase 2026' },
    });
    const second = await harness().request(reset, {
      input: { token, newPassword: 'another reset 2026!!' },
    });

    expect(first.data!.resetPassword.__typename).toBe('PasswordChanged');
    expect(second.data!.resetPassword.code).toBe('TOKEN_INVALID');
    expect(await status(member.sessionToken)).toBe(401);
    await signIn(harness(), member.username, 'reset passphrase 2026');
  });

  test('an expired reset token is rejected', async () => {
    const member = await signUp(harness(), 'expired');
    const mailsBefore = harness().smtp.mails.length;
    await harness().request(
      'mutation R($e: String!) { requestPasswordReset(email: $e) { message } }',
      { e: member.email },
    );
    const token = await tokenFromMail(harness(), member.email, 'pr_', mailsBefore);
    await harness()
      .sql()
      .query(
        `UPDATE member_token SET expires_at = now() - interval '1 second' WHERE purpose = 'password_reset'`,
      );

    const { data } = await harness().request(
      'mutation R($input: ResetPasswordInput!) { resetPassword(input: $input) { __typename ... on UserError { code } } }',
      { input: { token, newPassword: 'too late passphrase' } },
    );

    expect(data!.resetPassword.code).toBe('TOKEN_INVALID');
  });
});

describe('audit log', () => {
  test('records security events without secrets', async () => {
    const member = await signUp(harness(), 'audited');
    await harness().request('mutation L($i: LoginInput!) { login(input: $i) { __typename } }', {
      i: { login: member.username, password: 'wrong password!' },
    });
    await enableTwoFactor(harness(), member.sessionToken);

    const rows = await harness()
      .sql()
      .query<{ action: string; ip: string; details: string }>(
        `SELECT action, ip, details::text FROM audit_log
        WHERE subject_member_id = (SELECT id FROM member WHERE username = ?) ORDER BY id`,
        [member.username],
      );

    expect(rows.map((row) => row.action)).toEqual([
      'email_verified',
      'sign_in',
      'sign_in_failed',
      'two_factor_enabled',
    ]);
    for (const row of rows) expect(row.ip).toMatch(/127\.0\.0\.1/);
    const text = JSON.stringify(rows);
    expect(text).not.toContain(member.password);
    expect(text).not.toContain(member.sessionToken);
  });
});
