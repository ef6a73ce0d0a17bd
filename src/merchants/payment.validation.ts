import { badUserInput } from '../graphql/errors';

const MAX_KEY_LENGTH = 255;
const MAX_REFERENCE_LENGTH = 255;
const MAX_DESCRIPTION_LENGTH = 500;
const MAX_METADATA_BYTES = 4_096;

/** Throws BAD_USER_INPUT unless the amount is a positive number of points. */
export function checkPositiveAmount(amount: number, field = 'amount'): void {
  if (amount <= 0) {
    throw badUserInput(`${field} must be a positive whole number of points, got ${amount}`, field);
  }
}

/** Throws BAD_USER_INPUT unless the key is 1 to 255 printable ASCII characters. */
export function checkIdempotencyKey(key: string): void {
  if (key.length < 1 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw badUserInput(
      `idempotencyKey must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters without spaces`,
      'idempotencyKey',
    );
  }
}

export function checkOrderReference(reference: string): void {
  if (reference.trim().length < 1 || reference.length > MAX_REFERENCE_LENGTH || /[\x00-\x1f\x7f]/.test(reference)) {
    throw badUserInput(
      `orderReference must be 1 to ${MAX_REFERENCE_LENGTH} characters without control characters`,
      'orderReference',
    );
  }
}

export function checkDescription(description: string | null | undefined): void {
  if (description && (description.length > MAX_DESCRIPTION_LENGTH || /\x00/.test(description))) {
    throw badUserInput(`description must be at most ${MAX_DESCRIPTION_LENGTH} characters`, 'description');
  }
}

export function checkMetadata(metadata: Record<string, unknown> | null | undefined): void {
  if (metadata && Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
    throw badUserInput(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`, 'metadata');
  }
  // Postgres jsonb cannot store the NUL character.
  if (metadata && JSON.stringify(metadata).includes('\\u0000')) {
    throw badUserInput('metadata must not contain the NUL character', 'metadata');
  }
}
