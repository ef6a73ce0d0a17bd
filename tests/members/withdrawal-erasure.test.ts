import { useHarness } from '../support/harness';
import { LOGIN, signUp, walletPrepaidId, type TestMember } from '../support/members';

const harness = useHarness({}, { smtp: true });

const WITHDRAW = `
  mutation W($input: WithdrawInput!) {
    withdraw(input: $input) { __typename ... on Withdrawn { forfeited } ... on UserError { code } }
  }`;

/** Reads the audit entries that name the member as actor or subject, oldest first. */
async function auditEntries(memberId: string): Promise<{ action: string; ip: string }[]> {
  return harness()
    .sql()
    .query<{ action: string; ip: string }>(
      `SELECT action, ip FROM audit_log
        WHERE actor_member_id = ? OR subject_member_id = ? ORDER BY id`,
      [memberId, memberId],
    );
}

async function memberIdOf(member: TestMember): Promise<string> {
  const row = await harness()
    .sql()
    .one<{ id: string }>('SELECT id FROM member WHERE username = ?', [member.username]);
  return row!.id;
}

describe('withdrawal', () => {
  test('erases audit entry addresses, keeps entries', async () => {
    const member = await signUp(harness(), 'erased');
    const bystander = await signUp(harness(), 'bystander');
    const memberId = await memberIdOf(member);
    const bystanderId = await memberIdOf(bystander);
    await harness().request(LOGIN, { input: { login: member.username, password: 'not it' } });
    await walletPrepaidId(harness(), member.sessionToken);
    const actions = ['email_verified', 'sign_in', 'sign_in_failed', 'prepaid_id_revealed'];
    expect(await auditEntries(memberId)).toEqual(
      actions.map((action) => ({ action, ip: '127.0.0.1' })),
    );

    const { data } = await harness().request(
      WITHDRAW,
      { input: { password: member.password, confirmForfeitAmount: 0 } },
      member.sessionToken,
    );

    expect(data!.withdraw).toEqual({ __typename: 'Withdrawn', forfeited: 0 });
    expect(await auditEntries(memberId)).toEqual(
      [...actions, 'withdrawal'].map((action) => ({ action, ip: '' })),
    );
    expect(await auditEntries(bystanderId)).toEqual([
      { action: 'email_verified', ip: '127.0.0.1' },
      { action: 'sign_in', ip: '127.0.0.1' },
    ]);
  });
});
