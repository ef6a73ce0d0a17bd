import { createHmac, randomInt } from 'node:crypto';

/**
 * Digits and capital letters without 0, O, 1, I and L, so that no two symbols
 * look alike. That leaves 31 symbols, one fewer than base32, so a code of 10
 * symbols carries 10 × log2(31) ≈ 49.5 random bits.
 */
export const RECOVERY_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const RECOVERY_CODE_LENGTH = 10;
export const DEFAULT_RECOVERY_CODE_COUNT = 10;

const GROUP_LENGTH = RECOVERY_CODE_LENGTH / 2;
const NORMALISED_PATTERN = new RegExp(`^[${RECOVERY_CODE_ALPHABET}]{${RECOVERY_CODE_LENGTH}}$`);
// Longer input cannot be a code, and the limit keeps normalisation cheap.
const MAX_INPUT_LENGTH = 64;

/**
 * Generates distinct recovery codes from the CSPRNG, formatted for people as
 * `XXXXX-XXXXX`.
 */
export function generateRecoveryCodes(count: number = DEFAULT_RECOVERY_CODE_COUNT): string[] {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  const codes = new Set<string>();
  while (codes.size < count) {
    let code = '';
    for (let index = 0; index < RECOVERY_CODE_LENGTH; index++) {
      // randomInt draws uniformly, without the bias of a byte taken modulo 31.
      code += RECOVERY_CODE_ALPHABET[randomInt(RECOVERY_CODE_ALPHABET.length)];
    }
    codes.add(`${code.slice(0, GROUP_LENGTH)}-${code.slice(GROUP_LENGTH)}`);
  }
  return [...codes];
}

/**
 * Returns the canonical 10 symbols of a recovery code typed by a person, who
 * may use lower case, spaces or hyphens, or undefined if it is not a code.
 */
export function normaliseRecoveryCode(input: string): string | undefined {
  if (input.length > MAX_INPUT_LENGTH) return undefined;
  const symbols = input.replace(/[\s-]/g, '').toUpperCase();
  return NORMALISED_PATTERN.test(symbols) ? symbols : undefined;
}

/**
 * Computes the stored form of a recovery code: HMAC-SHA256 of its normalised
 * symbols. A fast keyed hash is enough here, unlike for passwords, because
 * each code has about 49.5 random bits and the key is kept outside the
 * database. An attacker with only a database dump cannot test a single guess.
 * Throws when `code` is not a recovery code.
 */
export function hashRecoveryCode(key: Buffer, code: string): Buffer {
  if (key.length < 32) {
    throw new RangeError(`hashRecoveryCode needs a key of at least 32 bytes, got ${key.length}`);
  }
  const normalised = normaliseRecoveryCode(code);
  if (normalised === undefined) {
    throw new RangeError(
      'hashRecoveryCode needs a recovery code of 10 valid symbols, so check input with normaliseRecoveryCode first',
    );
  }
  return createHmac('sha256', key).update(normalised).digest();
}
