import { COMMON_PASSWORDS } from './common-passwords';

/** Fewest Unicode code points in a new password. */
export const MIN_PASSWORD_LENGTH = 10;

/**
 * Most Unicode code points in a new password. argon2 reads the whole password,
 * so the cost of each hash grows with its length. The maximum bounds the work
 * per hash, so very long passwords cannot be used for denial of service, and
 * 128 code points still leave room for long passphrases and generated passwords.
 */
export const MAX_PASSWORD_LENGTH = 128;

/**
 * Shortest username or e-mail local part that checkPassword looks for.
 * Shorter ones would match too many passwords.
 */
export const MIN_CONTAINED_IDENTIFIER_LENGTH = 3;

export type PasswordRejectionReason =
  'TOO_SHORT' | 'TOO_LONG' | 'COMMON' | 'CONTAINS_USERNAME' | 'CONTAINS_EMAIL';

export const PASSWORD_REJECTION_MESSAGES: Readonly<Record<PasswordRejectionReason, string>> = {
  TOO_SHORT: `Use at least ${MIN_PASSWORD_LENGTH} characters.`,
  TOO_LONG: `Use at most ${MAX_PASSWORD_LENGTH} characters.`,
  COMMON: 'This password is on a list of common passwords, so choose another one.',
  CONTAINS_USERNAME: 'The password contains your username, so choose one without it.',
  CONTAINS_EMAIL:
    'The password contains the part of your e-mail address before the @, so choose one without it.',
};

export type PasswordCheck =
  { ok: true } | { ok: false; reason: PasswordRejectionReason; message: string };

/** The member's identifiers that a new password must not contain. */
export interface PasswordOwner {
  username: string;
  email: string;
}

/**
 * Checks a new password against the policy, rule by rule in the order of
 * PasswordRejectionReason, and returns the first rule that it breaks.
 * Lengths are counted in Unicode code points, so an emoji counts as one.
 */
export function checkPassword(password: string, { username, email }: PasswordOwner): PasswordCheck {
  const length = codePointLength(password);
  if (length < MIN_PASSWORD_LENGTH) return reject('TOO_SHORT');
  if (length > MAX_PASSWORD_LENGTH) return reject('TOO_LONG');
  if (isCommonPassword(password)) return reject('COMMON');

  const lowerPassword = password.toLowerCase();
  if (containsIdentifier(lowerPassword, username)) return reject('CONTAINS_USERNAME');
  if (containsIdentifier(lowerPassword, emailLocalPart(email))) return reject('CONTAINS_EMAIL');
  return { ok: true };
}

let commonPasswords: ReadonlySet<string> | undefined;

/** Checks whether the password, ignoring case, is on the shipped list of common passwords. */
export function isCommonPassword(password: string): boolean {
  // The set is built on first use, so a process that checks no password never pays for it.
  commonPasswords ??= new Set(COMMON_PASSWORDS);
  return commonPasswords.has(password.toLowerCase());
}

function reject(reason: PasswordRejectionReason): PasswordCheck {
  return { ok: false, reason, message: PASSWORD_REJECTION_MESSAGES[reason] };
}

function codePointLength(text: string): number {
  let length = 0;
  for (const _codePoint of text) length++;
  return length;
}

function containsIdentifier(lowerPassword: string, identifier: string): boolean {
  if (codePointLength(identifier) < MIN_CONTAINED_IDENTIFIER_LENGTH) return false;
  return lowerPassword.includes(identifier.toLowerCase());
}

/** The part of an e-mail address before its last @, or the whole value when it has none. */
function emailLocalPart(email: string): string {
  const at = email.lastIndexOf('@');
  return at === -1 ? email : email.slice(0, at);
}
