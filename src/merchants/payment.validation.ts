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

/** Throws BAD_USER_INPUT unless the reference is 1 to 255 characters of text on one line. */
export function checkOrderReference(reference: string): void {
  if (
    // Whitespace and invisible format characters alone are no reference.
    !/[^\s\p{Cf}]/u.test(reference) ||
    reference.length > MAX_REFERENCE_LENGTH ||
    /[\x00-\x1f\x7f\u0085\u2028\u2029]/.test(reference) ||
    hasLoneSurrogate(reference)
  ) {
    throw badUserInput(
      `orderReference must be 1 to ${MAX_REFERENCE_LENGTH} characters of well-formed text without control characters`,
      'orderReference',
    );
  }
}

export function checkDescription(description: string | null | undefined): void {
  if (!description) return;
  // Line breaks and tabs are text; other control characters are not.
  if (
    description.length > MAX_DESCRIPTION_LENGTH ||
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(description) ||
    hasLoneSurrogate(description)
  ) {
    throw badUserInput(
      `description must be at most ${MAX_DESCRIPTION_LENGTH} characters of text without control characters`,
      'description',
    );
  }
}

const MAX_METADATA_DEPTH = 8;

/**
 * Throws BAD_USER_INPUT unless the metadata can be stored and returned
 * unchanged: at most 4 KB and 8 levels deep, no NUL character and no lone
 * surrogate (Postgres jsonb rejects both), and numbers that a double holds
 * exactly.
 */
export function checkMetadata(metadata: Record<string, unknown> | null | undefined): void {
  if (!metadata) return;
  // The depth is checked first, so that serialising the size cannot overflow the stack.
  const problem = metadataProblem(metadata, 1);
  if (problem) throw badUserInput(`metadata ${problem}`, 'metadata');
  if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
    throw badUserInput(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`, 'metadata');
  }
}

function metadataProblem(value: unknown, depth: number): string | undefined {
  if (typeof value === 'string') return textProblem(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'numbers must be finite';
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return 'whole numbers must be within ±(2^53 - 1)';
    return undefined;
  }
  if (value === null || typeof value === 'boolean') return undefined;
  if (depth > MAX_METADATA_DEPTH) return `must be at most ${MAX_METADATA_DEPTH} levels deep`;
  const entries = Array.isArray(value)
    ? value.map((item) => ['', item] as const)
    : Object.entries(value as object);
  for (const [key, item] of entries) {
    const problem = textProblem(key) ?? metadataProblem(item, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain the NUL character';
  if (hasLoneSurrogate(text)) return 'must be well-formed Unicode (no lone surrogates)';
  return undefined;
}

/** Whether a string has half of a UTF-16 surrogate pair alone, which UTF-8 and Postgres cannot store. */
export function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
