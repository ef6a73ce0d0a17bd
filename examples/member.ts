/**
 * The member flow: register, verify the e-mail address with the token from
 * the mail outbox, sign in, turn on TOTP two-factor authentication, sign in
 * again with a TOTP code, and print the wallet.
 *
 * Run it against a local server (npm start) without SMTP_URL, so that mails
 * stay in the outbox, and with the server's DATABASE_URL (or none, for the
 * embedded Postgres of npm start):
 *
 *   npx ts-node --transpile-only examples/member.ts
 *
 * Settings, from environment variables:
 *   API_URL         GraphQL endpoint; default http://127.0.0.1:4000/graphql
 *   OUTBOX_COMMAND  command that prints the outbox when `--to <address>` is
 *                   appended; default `npm run admin --silent -- mail:outbox`.
 *                   It runs without a shell and is split at whitespace, so
 *                   no argument can contain a space.
 *
 * Every run registers a new member with a random username, an address at
 * example.com and a random password, and prints them. A run takes up to 30
 * seconds more than its requests, because each TOTP code is accepted once:
 * the sign-in waits for the code of the 30-second step after the one that
 * turned two-factor authentication on.
 *
 * Exits with 0 when every step succeeded and 1 when one failed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ClientError, GraphQLClient } from 'graphql-request';
import { currentTotpCode, TOTP_PERIOD_SECONDS, totpStepAt } from '../src/members/totp';

const API_URL = process.env.API_URL || 'http://127.0.0.1:4000/graphql';
const OUTBOX_COMMAND = process.env.OUTBOX_COMMAND || 'npm run admin --silent -- mail:outbox';
/** Maximum run time of the outbox command, which compiles the project first. */
const OUTBOX_TIMEOUT_MS = 120_000;
const VERIFICATION_TOKEN = /ev_[A-Za-z0-9_-]{43}/;

/** The fields of every typed result that this example prints. */
interface Result {
  __typename: string;
  code?: string;
  message?: string;
}

/** Raised when a step returns an unexpected result. The message names the step. */
class StepError extends Error {}

const client = new GraphQLClient(API_URL);

async function request<T>(
  query: string,
  variables: Record<string, unknown> = {},
  sessionToken?: string,
): Promise<T> {
  return client.request<T>({
    document: query,
    variables,
    requestHeaders: sessionToken ? { authorization: `Bearer ${sessionToken}` } : {},
  });
}

/** Returns the result when its type is `expected`, and throws a StepError that shows it otherwise. */
function expectResult<T extends Result>(step: string, result: T | null, expected: string): T {
  if (result?.__typename === expected) return result;
  const detail = result?.code ? `${result.code}: ${result.message}` : JSON.stringify(result);
  throw new StepError(`${step} returned ${result?.__typename ?? 'null'} (${detail})`);
}

/** Runs OUTBOX_COMMAND for the address and returns the newest verification token in its output. */
async function verificationTokenFromOutbox(email: string): Promise<string> {
  const [command, ...args] = OUTBOX_COMMAND.trim().split(/\s+/);
  let output: string;
  try {
    ({ stdout: output } = await promisify(execFile)(command!, [...args, '--to', email], {
      timeout: OUTBOX_TIMEOUT_MS,
    }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new StepError(
      `reading the outbox with "${OUTBOX_COMMAND}" failed: ${stderr || (error as Error).message}`,
    );
  }
  // mail:outbox prints the newest mail first.
  const token = VERIFICATION_TOKEN.exec(output)?.[0];
  if (!token) {
    throw new StepError(
      `no verification token for ${email} in the output of "${OUTBOX_COMMAND}"; ` +
        'the server and this example must use the same database',
    );
  }
  return token;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

async function run(): Promise<void> {
  const suffix = randomBytes(3).toString('hex');
  const username = `example-${suffix}`;
  const email = `example-${suffix}@example.com`;
  const password = randomBytes(12).toString('base64url');
  console.log(`member: username ${username}, e-mail ${email}, password ${password}`);

  const { register } = await request<{ register: Result }>(
    `mutation Register($input: RegisterInput!) {
      register(input: $input) { __typename ... on UserError { code message } }
    }`,
    { input: { email, username, password } },
  );
  expectResult('register', register, 'RequestAccepted');
  console.log('register: accepted; the verification mail is in the outbox');

  const token = await verificationTokenFromOutbox(email);
  const { verifyEmail } = await request<{ verifyEmail: Result }>(
    `mutation Verify($token: String!) {
      verifyEmail(token: $token) { __typename ... on UserError { code message } }
    }`,
    { token },
  );
  expectResult('verifyEmail', verifyEmail, 'EmailVerified');
  console.log('verifyEmail: the address is verified, so the wallet can pay and receive');

  const LOGIN = `mutation Login($input: LoginInput!) {
    login(input: $input) {
      __typename
      ... on LoginSuccess { sessionToken }
      ... on TwoFactorRequired { challengeToken }
      ... on UserError { code message }
    }
  }`;
  const firstLogin = await request<{ login: Result & { sessionToken: string } }>(LOGIN, {
    input: { login: username, password },
  });
  const { sessionToken } = expectResult('login', firstLogin.login, 'LoginSuccess');
  console.log('login: signed in with the password alone');

  const { enrollTotp } = await request<{
    enrollTotp: Result & { secret: string; otpauthUri: string };
  }>(
    `mutation Enroll {
      enrollTotp {
        __typename
        ... on TotpEnrollment { secret otpauthUri }
        ... on UserError { code message }
      }
    }`,
    {},
    sessionToken,
  );
  const { secret, otpauthUri } = expectResult('enrollTotp', enrollTotp, 'TotpEnrollment');
  console.log(`enrollTotp: secret ${secret}`);
  console.log(`enrollTotp: URI for an authenticator app ${otpauthUri}`);

  const confirmStep = totpStepAt(Date.now());
  const { confirmTotp } = await request<{ confirmTotp: Result & { recoveryCodes: string[] } }>(
    `mutation Confirm($code: String!) {
      confirmTotp(code: $code) {
        __typename
        ... on TwoFactorEnabled { recoveryCodes }
        ... on UserError { code message }
      }
    }`,
    { code: currentTotpCode(secret) },
    sessionToken,
  );
  const { recoveryCodes } = expectResult('confirmTotp', confirmTotp, 'TwoFactorEnabled');
  console.log(
    `confirmTotp: two-factor authentication is on; recovery codes ${recoveryCodes.join(' ')}`,
  );

  // The server accepts each code once, and the code of confirmStep is used.
  const nextStepAt = (confirmStep + 1) * TOTP_PERIOD_SECONDS * 1000;
  const waitMs = Math.max(0, nextStepAt - Date.now());
  console.log(`waiting ${Math.ceil(waitMs / 1000)} s for the next TOTP code`);
  await sleep(waitMs);

  const secondLogin = await request<{ login: Result & { challengeToken: string } }>(LOGIN, {
    input: { login: username, password },
  });
  const { challengeToken } = expectResult('login', secondLogin.login, 'TwoFactorRequired');
  console.log('login: the password is right, and the server asks for a code (TwoFactorRequired)');

  const { completeLogin } = await request<{
    completeLogin: Result & { sessionToken: string; expiresAt: string };
  }>(
    `mutation Complete($input: CompleteLoginInput!) {
      completeLogin(input: $input) {
        __typename
        ... on LoginSuccess { sessionToken expiresAt }
        ... on UserError { code message }
      }
    }`,
    { input: { challengeToken, code: currentTotpCode(secret) } },
  );
  const session = expectResult('completeLogin', completeLogin, 'LoginSuccess');
  console.log(
    `completeLogin: signed in with a TOTP code; the session expires at ${session.expiresAt}`,
  );
  console.log(`session token, for SESSION_TOKEN of examples/dashboard.ts: ${session.sessionToken}`);

  const { viewer } = await request<{
    viewer: {
      username: string;
      twoFactorEnabled: boolean;
      wallet: {
        prepaidId: string;
        status: string;
        canPay: boolean;
        balanceAvailable: number;
        balanceHeld: number;
      } | null;
    } | null;
  }>(
    `query Wallet {
      viewer {
        username twoFactorEnabled
        wallet { prepaidId status canPay balanceAvailable balanceHeld }
      }
    }`,
    {},
    session.sessionToken,
  );
  const wallet = viewer?.wallet;
  if (!wallet) throw new StepError(`viewer returned no wallet: ${JSON.stringify(viewer)}`);
  console.log(
    `wallet: prepaid ID ${wallet.prepaidId}, ${wallet.status}, ${wallet.balanceAvailable} points available, ` +
      `${wallet.balanceHeld} held, ${wallet.canPay ? 'can pay' : 'cannot pay'}`,
  );
}

run().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    if (error instanceof ClientError) {
      const first = error.response.errors?.[0];
      console.error(`error: ${String(first?.extensions?.code)}: ${first?.message}`);
    } else {
      console.error(`error: ${(error as Error).message}`);
    }
    process.exitCode = 1;
  },
);
