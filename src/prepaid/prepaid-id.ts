import { randomInt } from 'node:crypto';

export const PREPAID_ID_LENGTH = 16;

/**
 * Returns the canonical 16 digits of a prepaid ID typed by a person, who may
 * group the digits with whitespace or hyphens, or undefined if it is not 16 digits.
 * The check digit is not verified here.
 */
export function normalisePrepaidId(input: string): string | undefined {
  if (input.length > 64) return undefined;
  const digits = input.replace(/[\s-]/g, '');
  return /^\d{16}$/.test(digits) ? digits : undefined;
}

/** Computes the Luhn check digit for the given payload digits. */
export function luhnCheckDigit(payload: string): number {
  let sum = 0;
  // Walking from the right, every second digit starting with the rightmost
  // payload digit is doubled, because the check digit will sit to its right.
  for (let index = 0; index < payload.length; index++) {
    let digit = Number(payload[payload.length - 1 - index]);
    if (index % 2 === 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - (sum % 10)) % 10;
}

export function hasValidCheckDigit(digits: string): boolean {
  return luhnCheckDigit(digits.slice(0, -1)) === Number(digits.at(-1));
}

/** Generates a random prepaid ID: 15 digits from the CSPRNG and a Luhn check digit. */
export function generatePrepaidId(): string {
  let payload = '';
  for (let index = 0; index < PREPAID_ID_LENGTH - 1; index++) {
    payload += String(randomInt(10));
  }
  return payload + String(luhnCheckDigit(payload));
}

/** Formats the digits in groups of four for printing to their owner. */
export function groupDigits(digits: string): string {
  return digits.replace(/(\d{4})(?=\d)/g, '$1 ');
}

/** The masked form shown wherever the full ID is not needed. */
export function maskPrepaidId(lastDigits: string): string {
  return `**** **** **** ${lastDigits}`;
}
