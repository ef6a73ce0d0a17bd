import { DEFAULT_LIMITS } from '../../src/rate-limit/rate-limits';
import { Harness } from '../support/harness';
import { LOGIN, newIdentity, REGISTER, signUp } from '../support/members';

// This file runs with the default limits, which the other test files raise
// because all of their requests come from 127.0.0.1.
let harness: Harness;
beforeAll(async () => {
  harness = await Harness.start({ RATE_LIMITS: '{}' }, { smtp: true });
});
afterAll(async () => {
  await harness.stop();
});

function codes(response: {
  data?: Record<string, any> | null;
  errors?: Array<{ extensions?: Record<string, unknown> }>;
}) {
  return [
    ...Object.values(response.data ?? {})
      .filter((value) => value !== null)
      .map((value: any) => value.code ?? value.__typename),
    ...(response.errors ?? []).map((error) => error.extensions?.code),
  ];
}

describe('rate limits', () => {
  test('sign-in attempts per account, counted per alias and shared by instances', async () => {
    const member = await signUp(harness, 'limited');
    const peer = await harness.startPeer();
    const attempt = (index: number) =>
      `a${index}: login(input: { login: "${member.username}", password: "wrong password ${index}" }) { __typename ... on UserError { code } }`;

    const first = await harness.request(
      `mutation { ${[1, 2, 3, 4, 5, 6].map(attempt).join(' ')} }`,
    );
    const second = await harness.request(
      `mutation { ${[7, 8, 9, 10, 11, 12].map(attempt).join(' ')} }`,
      {},
      undefined,
      peer.url,
    );
    const right = await harness.request(LOGIN, {
      input: { login: member.username, password: member.password },
    });

    // The sign-in of signUp succeeded, which cleared the count.
    const limit = DEFAULT_LIMITS.loginPerAccount.points;
    const all = [...codes(first), ...codes(second)];
    expect(all.filter((code) => code === 'INVALID_CREDENTIALS')).toHaveLength(limit);
    expect(all.filter((code) => code === 'RATE_LIMITED')).toHaveLength(12 - limit);
    expect(right.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(right.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(800);
  });

  test('password reset mails per address', async () => {
    const member = await signUp(harness, 'resets');
    const reset = (index: number) =>
      `r${index}: requestPasswordReset(email: "${member.email}") { message }`;

    const response = await harness.request(`mutation { ${[1, 2, 3, 4, 5].map(reset).join(' ')} }`);

    expect(Object.values(response.data!).filter((value) => value !== null)).toHaveLength(
      DEFAULT_LIMITS.mailPerAddress.points,
    );
    expect(response.errors!.map((error) => error.extensions!.code)).toEqual([
      'RATE_LIMITED',
      'RATE_LIMITED',
    ]);
  });

  test('registrations per IP address', async () => {
    const register = (index: number) => {
      const identity = newIdentity(`ip${index}`);
      return `r${index}: register(input: { email: "${identity.email}", username: "${identity.username}", password: "${identity.password}" }) { __typename }`;
    };
    const used = await harness.count(
      `SELECT count(*) FROM audit_log WHERE action = 'email_verified'`,
    );

    const response = await harness.request(
      `mutation { ${Array.from({ length: 12 }, (_, index) => register(index)).join(' ')} }`,
    );

    const accepted = Object.values(response.data!).filter((value) => value !== null);
    expect(accepted.length + used).toBe(DEFAULT_LIMITS.registrationPerIp.points);
    expect(response.errors!.every((error) => error.extensions!.code === 'RATE_LIMITED')).toBe(true);
    const rejected = await harness.request(REGISTER, { input: newIdentity('late') });
    expect(rejected.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
  });
});
