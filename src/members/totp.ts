import { generateSecret, generateSync, generateURI, verifySync } from 'otplib';
import { toDataURL } from 'qrcode';

// TOTP (RFC 6238) with HMAC-SHA-1, 6 digits and 30-second steps. These are
// otplib's defaults, so otplib 13.5.0 leaves them out of the otpauth:// URI.
export const TOTP_ALGORITHM = 'sha1';
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Secret size in bytes: 160 bits, the output size of HMAC-SHA-1. */
export const TOTP_SECRET_BYTES = 20;
/** Steps accepted on either side of the current one, for clock drift between phone and server. */
export const TOTP_DRIFT_STEPS = 1;

export type TotpVerification = { valid: true; step: number } | { valid: false };

/** Creates a random TOTP secret of 20 bytes, base32-encoded (32 characters). */
export function createTotpSecret(): string {
  return generateSecret({ length: TOTP_SECRET_BYTES });
}

/** Builds the otpauth:// URI that an authenticator app reads from a QR code. */
export function totpUri(secret: string, accountName: string, issuer: string): string {
  return generateURI({
    issuer,
    label: accountName,
    secret,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  });
}

/** Renders the URI as a QR code in a `data:image/png;base64,…` URL. */
export function totpQrCodeDataUrl(uri: string): Promise<string> {
  return toDataURL(uri, { type: 'image/png', errorCorrectionLevel: 'M' });
}

/** Computes the RFC 6238 time step at `now`, given in milliseconds since the Unix epoch. */
export function totpStepAt(now: number): number {
  return Math.floor(now / 1000 / TOTP_PERIOD_SECONDS);
}

/**
 * Verifies a code typed by a member. Accepts the code of the current step or
 * of one step either side, but only if that step is later than
 * `lastUsedStep`, so that no code is accepted twice. The caller stores the
 * returned step as the next `lastUsedStep`, which is 0 while no code was used.
 * Whitespace is removed first, and anything but 6 ASCII digits is invalid.
 */
export function verifyTotp(
  secret: string,
  code: string,
  lastUsedStep: number,
  now: number = Date.now(),
): TotpVerification {
  if (!Number.isSafeInteger(lastUsedStep) || lastUsedStep < 0) {
    throw new RangeError(`lastUsedStep must be a non-negative integer, got ${lastUsedStep}`);
  }
  const token = code.replace(/\s/g, '');
  // otplib throws for a token of the wrong length or with non-digits, so
  // member input is checked here and never reaches it in those forms.
  if (!/^[0-9]{6}$/.test(token)) return { valid: false };

  // otplib also throws when afterTimeStep lies beyond the window. No step in
  // the window is later than lastUsedStep then, so the code is invalid.
  if (lastUsedStep >= totpStepAt(now) + TOTP_DRIFT_STEPS) return { valid: false };

  const result = verifySync({
    secret,
    token,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    epoch: Math.floor(now / 1000),
    // otplib takes the window in seconds and checks every step that it
    // touches: one period either side is exactly one step either side.
    epochTolerance: TOTP_DRIFT_STEPS * TOTP_PERIOD_SECONDS,
    // otplib skips every step at or before this one.
    afterTimeStep: lastUsedStep,
  });
  if (!result.valid) return { valid: false };
  // delta is the matched step's offset from the current step. otplib's type
  // for the result of either strategy has no timeStep, so the step is computed.
  return { valid: true, step: totpStepAt(now) + result.delta };
}

/** Generates the code of the step at `now`, for tests and the seed script. */
export function currentTotpCode(secret: string, now: number = Date.now()): string {
  return generateSync({
    secret,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    epoch: Math.floor(now / 1000),
  });
}
