// Input checks of operator actions, shared by the API and the CLI. Each check
// returns the normalised value or raises OperatorInputError.
import { hasLoneSurrogate } from '../merchants/payment.validation';
import { hasValidCheckDigit, normalisePrepaidId } from '../prepaid/prepaid-id';

const MAX_REASON_LENGTH = 500;
const MAX_KEY_LENGTH = 255;
const MAX_USERNAME_LENGTH = 254;

/** Raised for input with the wrong shape or range, before anything is read or written. */
export class OperatorInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Returns the canonical 16 digits, or raises OperatorInputError for a typing mistake. */
export function checkPrepaidIdDigits(input: string): string {
  const digits = normalisePrepaidId(input);
  if (!digits || !hasValidCheckDigit(digits)) {
    throw new OperatorInputError(
      'prepaidId',
      'prepaidId must be 16 digits with a valid check digit; spaces and hyphens are ignored',
    );
  }
  return digits;
}

/** Returns the reason trimmed, or raises OperatorInputError when it is empty, too long or not text. */
export function checkReason(reason: string): string {
  const trimmed = reason.trim();
  if (
    trimmed.length < 1 ||
    trimmed.length > MAX_REASON_LENGTH ||
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(trimmed) ||
    hasLoneSurrogate(trimmed)
  ) {
    throw new OperatorInputError(
      'reason',
      `reason is required: 1 to ${MAX_REASON_LENGTH} characters of text without control characters`,
    );
  }
  return trimmed;
}

/**
 * Returns the username trimmed, or raises OperatorInputError when it is
 * empty, too long or contains characters that no username has. Postgres rejects
 * a NUL byte in a query parameter, so it must not reach the look-up.
 */
export function checkUsername(username: string): string {
  const trimmed = username.trim();
  if (
    trimmed.length < 1 ||
    trimmed.length > MAX_USERNAME_LENGTH ||
    /[\x00-\x1f\x7f]/.test(trimmed) ||
    hasLoneSurrogate(trimmed)
  ) {
    throw new OperatorInputError(
      'username',
      `username is required: 1 to ${MAX_USERNAME_LENGTH} characters without control characters`,
    );
  }
  return trimmed;
}

export function checkPositivePoints(amount: number, field: string): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    throw new OperatorInputError(
      field,
      `${field} must be a positive whole number of points, got ${amount}`,
    );
  }
}

export function checkIdempotencyKey(key: string): void {
  if (key.length < 1 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new OperatorInputError(
      'idempotencyKey',
      `idempotencyKey must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters without spaces`,
    );
  }
}
