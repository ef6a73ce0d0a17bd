import { currentTotpCode } from '../../src/members/totp';
import type { Harness } from './harness';

let counter = 0;

export interface TestMember {
  email: string;
  username: string;
  password: string;
  sessionToken: string;
}

export const REGISTER = `
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      __typename
      ... on RequestAccepted { message }
      ... on PasswordRejectedError { code reason message }
    }
  }`;

export const LOGIN = `
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      __typename
      ... on LoginSuccess { sessionToken expiresAt }
      ... on TwoFactorRequired { challengeToken expiresAt }
      ... on UserError { code message }
    }
  }`;

export const COMPLETE_LOGIN = `
  mutation Complete($input: CompleteLoginInput!) {
    completeLogin(input: $input) {
      __typename
      ... on LoginSuccess { sessionToken expiresAt }
      ... on UserError { code message }
    }
  }`;

export const VERIFY_EMAIL = `
  mutation Verify($token: String!) {
    verifyEmail(token: $token) { __typename ... on UserError { code message } }
  }`;

export const VIEWER = `
  query Viewer {
    viewer {
      id username email emailVerified twoFactorEnabled role
      wallet { id status prepaidId canPay balancePosted balanceHeld balanceAvailable }
    }
  }`;

/** A unique identity for a new member. */
export function newIdentity(label = 'member') {
  counter++;
  const name = `${label}${process.pid}x${counter}`;
  return {
    email: `${name}@example.test`,
    username: name,
    password: `correct horse ${counter} battery staple`,
  };
}

/** Waits for the mail of the given kind to the address and returns the token in it. */
export async function tokenFromMail(
  harness: Harness,
  to: string,
  prefix: 'ev_' | 'pr_',
  after = 0,
): Promise<string> {
  const mail = await harness.smtp.waitForMail(
    (received) =>
      received.to.includes(to) &&
      received.text.includes(prefix) &&
      harness.smtp.mails.indexOf(received) >= after,
  );
  const match = new RegExp(`(${prefix}[A-Za-z0-9_-]{43})`).exec(mail.text);
  if (!match) throw new Error(`no ${prefix} token in mail: ${mail.text}`);
  return match[1]!;
}

/** Registers, verifies the address from the mail, and signs in. */
export async function signUp(harness: Harness, label?: string): Promise<TestMember> {
  const identity = newIdentity(label);
  const registered = await harness.request(REGISTER, { input: identity });
  if (registered.data?.register.__typename !== 'RequestAccepted') {
    throw new Error(`registration failed: ${JSON.stringify(registered)}`);
  }
  const token = await tokenFromMail(harness, identity.email, 'ev_');
  const verified = await harness.request(VERIFY_EMAIL, { token });
  if (verified.data?.verifyEmail.__typename !== 'EmailVerified')
    throw new Error(`verification failed: ${JSON.stringify(verified)}`);
  const sessionToken = await signIn(harness, identity.username, identity.password);
  return { ...identity, sessionToken };
}

export async function signIn(harness: Harness, login: string, password: string): Promise<string> {
  const { data } = await harness.request(LOGIN, { input: { login, password } });
  if (data?.login.__typename !== 'LoginSuccess')
    throw new Error(`login failed: ${JSON.stringify(data)}`);
  return data.login.sessionToken as string;
}

/** Enrols and confirms TOTP; returns the secret and the recovery codes. */
export async function enableTwoFactor(
  harness: Harness,
  sessionToken: string,
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const enrolled = await harness.request(
    'mutation { enrollTotp { __typename ... on TotpEnrollment { secret otpauthUri qrCodeDataUrl } } }',
    {},
    sessionToken,
  );
  const secret = enrolled.data!.enrollTotp.secret as string;
  const confirmed = await harness.request(
    'mutation Confirm($code: String!) { confirmTotp(code: $code) { __typename ... on TwoFactorEnabled { recoveryCodes } ... on UserError { code } } }',
    { code: freshTotpCode(harness, secret) },
    sessionToken,
  );
  if (confirmed.data?.confirmTotp.__typename !== 'TwoFactorEnabled')
    throw new Error(`2FA confirmation failed: ${JSON.stringify(confirmed)}`);
  return { secret, recoveryCodes: confirmed.data.confirmTotp.recoveryCodes };
}

/**
 * A TOTP code that the server has not seen yet: moves the server's clock to
 * the next 30-second step, as a member would wait for the next code, and
 * returns the code of that step.
 */
export function freshTotpCode(harness: Harness, secret: string): string {
  harness.services.clock.advance(30_000);
  return currentTotpCode(secret, harness.services.clock.now());
}

/** The member's wallet prepaid ID, revealed through the API. */
export async function walletPrepaidId(
  harness: Harness,
  sessionToken: string,
  twoFactorCode?: string,
): Promise<string> {
  const { data } = await harness.request(
    'mutation Reveal($code: String) { revealPrepaidId(twoFactorCode: $code) { __typename ... on PrepaidIdRevealed { prepaidId } ... on UserError { code } } }',
    { code: twoFactorCode ?? null },
    sessionToken,
  );
  if (data?.revealPrepaidId.__typename !== 'PrepaidIdRevealed')
    throw new Error(`reveal failed: ${JSON.stringify(data)}`);
  return data.revealPrepaidId.prepaidId as string;
}

let keyCounter = 0;

/** A fresh idempotency key for member operations. */
export function newKeyFor(label: string): string {
  return `${label}-${process.pid}-${Date.now()}-${++keyCounter}`;
}
