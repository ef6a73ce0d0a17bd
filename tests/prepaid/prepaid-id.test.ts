import {
  generatePrepaidId,
  groupDigits,
  hasValidCheckDigit,
  luhnCheckDigit,
  maskPrepaidId,
  normalisePrepaidId,
} from '../../src/prepaid/prepaid-id';
import { PrepaidIdVault } from '../../src/prepaid/prepaid-id.vault';

describe('Luhn check digit', () => {
  test.each([
    ['7992739871', 3],
    ['411111111111111', 1],
    ['401288888888188', 1],
    ['543210987654321', 2],
    ['000000000000000', 0],
  ])('of %s is %d', (payload, digit) => {
    expect(luhnCheckDigit(payload)).toBe(digit);
  });

  test('detects every single-digit change', () => {
    const digits = '4111111111111111';
    expect(hasValidCheckDigit(digits)).toBe(true);
    for (let position = 0; position < digits.length; position++) {
      for (let replacement = 0; replacement <= 9; replacement++) {
        if (String(replacement) === digits[position]) continue;
        const changed = digits.slice(0, position) + replacement + digits.slice(position + 1);
        expect(hasValidCheckDigit(changed)).toBe(false);
      }
    }
  });
});

describe('generatePrepaidId', () => {
  test('makes 16 digits with a valid check digit', () => {
    for (let index = 0; index < 1_000; index++) {
      const digits = generatePrepaidId();
      expect(digits).toMatch(/^\d{16}$/);
      expect(hasValidCheckDigit(digits)).toBe(true);
    }
  });

  test('uses every digit in every position', () => {
    const seen = Array.from({ length: 15 }, () => new Set<string>());
    for (let index = 0; index < 2_000; index++) {
      const digits = generatePrepaidId();
      for (let position = 0; position < 15; position++) seen[position]!.add(digits[position]!);
    }
    for (const digitsAtPosition of seen) expect(digitsAtPosition.size).toBe(10);
  });
});

describe('normalisePrepaidId', () => {
  test.each([
    ['4111 1111 1111 1111', '4111111111111111'],
    ['4111-1111-1111-1111', '4111111111111111'],
    [' 4111111111111111 ', '4111111111111111'],
    ['4111\t1111 - 1111 1111', '4111111111111111'],
  ])('accepts %j', (input, expected) => {
    expect(normalisePrepaidId(input)).toBe(expected);
  });

  test.each([
    '',
    '411111111111111',
    '41111111111111111',
    '4111.1111.1111.1111',
    '４１１１１１１１１１１１１１１１',
    'x'.repeat(100),
  ])('rejects %j', (input) => {
    expect(normalisePrepaidId(input)).toBeUndefined();
  });

  test('formats for people', () => {
    expect(groupDigits('4111111111111111')).toBe('4111 1111 1111 1111');
    expect(maskPrepaidId('1234')).toBe('**** **** **** 1234');
  });
});

describe('PrepaidIdVault', () => {
  const vault = new PrepaidIdVault(Buffer.alloc(32, 1), Buffer.alloc(32, 2));

  test('decrypts what it encrypted, with a fresh IV each time', () => {
    const first = vault.encrypt('4111111111111111');
    const second = vault.encrypt('4111111111111111');

    expect(first.equals(second)).toBe(false);
    expect(first.includes(Buffer.from('4111111111111111'))).toBe(false);
    expect(vault.decrypt(first)).toBe('4111111111111111');
    expect(vault.decrypt(second)).toBe('4111111111111111');
  });

  test('rejects a tampered ciphertext', () => {
    const sealed = vault.encrypt('4111111111111111');
    sealed[sealed.length - 1] ^= 1;

    expect(() => vault.decrypt(sealed)).toThrow();
  });

  test('hashes by key', () => {
    const other = new PrepaidIdVault(Buffer.alloc(32, 3), Buffer.alloc(32, 2));

    expect(vault.lookupHash('4111111111111111').equals(vault.lookupHash('4111111111111111'))).toBe(
      true,
    );
    expect(vault.lookupHash('4111111111111111').equals(other.lookupHash('4111111111111111'))).toBe(
      false,
    );
  });
});
