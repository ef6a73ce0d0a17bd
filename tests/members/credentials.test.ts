import { createHmac } from 'node:crypto';
import * as argon2 from 'argon2';
import { COMMON_PASSWORDS } from '../../src/members/common-passwords';
import { OWASP_ARGON2ID_PARAMETERS, PasswordHasher } from '../../src/members/password-hasher';
import {
  checkPassword,
  isCommonPassword,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  PASSWORD_REJECTION_MESSAGES,
} from '../../src/members/password-policy';
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_ALPHABET,
} from '../../src/members/recovery-codes';
import { deriveKey, SecretBox } from '../../src/members/secret-box';
import {
  createTotpSecret,
  currentTotpCode,
  totpQrCodeDataUrl,
  totpStepAt,
  totpUri,
  verifyTotp,
} from '../../src/members/totp';

const owner = { username: 'hanako', email: 'yamada.h@example.jp' };

/** Ten emoji, each a single code point outside the BMP, so 20 UTF-16 code units. */
const TEN_EMOJI = '🐱🐶🦊🐻🐼🐨🐯🦁🐮🐷';

/** Builds a password that breaks no rule for `owner`, of the given number of code points. */
function passwordOfLength(length: number): string {
  return 'k7#Qm2vX9p'.repeat(Math.ceil(length / 10)).slice(0, length);
}

describe('checkPassword', () => {
  test('messages per reason', () => {
    expect(PASSWORD_REJECTION_MESSAGES).toEqual({
      TOO_SHORT: 'Use at least 10 characters.',
      TOO_LONG: 'Use at most 128 characters.',
      COMMON: 'This password is on a list of common passwords, so choose another one.',
      CONTAINS_USERNAME: 'The password contains your username, so choose one without it.',
      CONTAINS_EMAIL:
        'The password contains the part of your e-mail address before the @, so choose one without it.',
    });
    expect(MIN_PASSWORD_LENGTH).toBe(10);
    expect(MAX_PASSWORD_LENGTH).toBe(128);
  });

  test('rejects 9 code points as too short', () => {
    expect(checkPassword(passwordOfLength(9), owner)).toEqual({
      ok: false,
      reason: 'TOO_SHORT',
      message: 'Use at least 10 characters.',
    });
    expect(checkPassword('', owner)).toMatchObject({ ok: false, reason: 'TOO_SHORT' });
  });

  test('accepts 10 and 128 code points', () => {
    expect(checkPassword(passwordOfLength(10), owner)).toEqual({ ok: true });
    expect(checkPassword(passwordOfLength(128), owner)).toEqual({ ok: true });
  });

  test('rejects 129 code points as too long', () => {
    expect(checkPassword(passwordOfLength(129), owner)).toEqual({
      ok: false,
      reason: 'TOO_LONG',
      message: 'Use at most 128 characters.',
    });
  });

  test('counts emoji as one character', () => {
    expect(TEN_EMOJI.length).toBe(20);
    expect(checkPassword(TEN_EMOJI, owner)).toEqual({ ok: true });
    expect(checkPassword([...TEN_EMOJI].slice(0, 9).join(''), owner)).toMatchObject({
      reason: 'TOO_SHORT',
    });
    const emoji128 = TEN_EMOJI.repeat(13).slice(0, 256);
    expect([...emoji128]).toHaveLength(128);
    expect(checkPassword(emoji128, owner)).toEqual({ ok: true });
    expect(checkPassword(emoji128 + '🐸', owner)).toMatchObject({ reason: 'TOO_LONG' });
  });

  test('rejects common passwords ignoring case', () => {
    const expected = {
      ok: false,
      reason: 'COMMON',
      message: 'This password is on a list of common passwords, so choose another one.',
    };
    expect(checkPassword('password123', owner)).toEqual(expected);
    expect(checkPassword('PassWord123', owner)).toEqual(expected);
    expect(checkPassword('QWERTYUIOP', owner)).toEqual(expected);
    expect(checkPassword(COMMON_PASSWORDS.at(-1)!, owner)).toEqual(expected);
  });

  test('common list is lower-case, unique and long', () => {
    expect(COMMON_PASSWORDS.length).toBeGreaterThan(1_000);
    expect(new Set(COMMON_PASSWORDS).size).toBe(COMMON_PASSWORDS.length);
    for (const entry of COMMON_PASSWORDS) {
      expect(entry).toBe(entry.toLowerCase());
      expect([...entry].length).toBeGreaterThanOrEqual(MIN_PASSWORD_LENGTH);
      expect(isCommonPassword(entry)).toBe(true);
    }
    expect(isCommonPassword('k7#Qm2vX9p')).toBe(false);
  });

  test('rejects the username ignoring case', () => {
    expect(checkPassword('my-HANAKO-wallet-2026', owner)).toEqual({
      ok: false,
      reason: 'CONTAINS_USERNAME',
      message: 'The password contains your username, so choose one without it.',
    });
  });

  test('checks usernames of 3 or more characters', () => {
    const email = 'someone@example.jp';
    expect(checkPassword('ken-wallet-2026!', { username: 'Ken', email })).toMatchObject({
      reason: 'CONTAINS_USERNAME',
    });
    expect(checkPassword('li-wallet-2026!', { username: 'li', email })).toEqual({ ok: true });
  });

  test('rejects the e-mail local part ignoring case', () => {
    expect(checkPassword('Yamada.H-2026-wallet', owner)).toEqual({
      ok: false,
      reason: 'CONTAINS_EMAIL',
      message:
        'The password contains the part of your e-mail address before the @, so choose one without it.',
    });
  });

  test('ignores the e-mail domain', () => {
    expect(checkPassword('example.jp-2026-wallet', owner)).toEqual({ ok: true });
    expect(checkPassword('yamada.h@example.jp', owner)).toMatchObject({ reason: 'CONTAINS_EMAIL' });
  });

  test('checks local parts of 3 or more characters', () => {
    const username = 'someone';
    expect(checkPassword('yhk-wallet-2026!', { username, email: 'YHK@example.jp' })).toMatchObject({
      reason: 'CONTAINS_EMAIL',
    });
    expect(checkPassword('yh-wallet-2026!', { username, email: 'yh@example.jp' })).toEqual({
      ok: true,
    });
  });

  test('reports the first broken rule', () => {
    const username = 'password';
    const email = 'password@example.jp';
    expect(checkPassword('password', { username, email })).toMatchObject({ reason: 'TOO_SHORT' });
    expect(checkPassword('password123', { username, email })).toMatchObject({ reason: 'COMMON' });
    expect(checkPassword('my-password-2026', { username, email })).toMatchObject({
      reason: 'CONTAINS_USERNAME',
    });
  });
});

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher();
  let hash: string;

  beforeAll(async () => {
    hash = await hasher.hash('correct horse battery staple');
  });

  test('hashes with the OWASP argon2id parameters', () => {
    expect(OWASP_ARGON2ID_PARAMETERS).toEqual({ memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(hash).toMatch(
      /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
    );
  });

  test('salts every hash', async () => {
    expect(await hasher.hash('correct horse battery staple')).not.toBe(hash);
  });

  test('verifies the right password only', async () => {
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery stapler')).toBe(false);
    expect(await hasher.verify(hash, 'Correct horse battery staple')).toBe(false);
    expect(await hasher.verify(hash, '')).toBe(false);
  });

  test.each([
    '',
    'not a hash',
    '$argon2id$v=19$m=19456,t=2,p=1$broken',
    '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
  ])('returns false for malformed hash %j', async (malformed) => {
    await expect(hasher.verify(malformed, 'correct horse battery staple')).resolves.toBe(false);
  });

  test('verifyDummy returns false at full cost', async () => {
    const realMs: number[] = [];
    const dummyMs: number[] = [];
    for (let round = 0; round < 5; round++) {
      let start = performance.now();
      await hasher.verify(hash, 'wrong password');
      realMs.push(performance.now() - start);
      start = performance.now();
      expect(await hasher.verifyDummy('wrong password')).toBe(false);
      dummyMs.push(performance.now() - start);
    }
    const ratio = median(dummyMs) / median(realMs);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });

  test('needsRehash for other parameters', async () => {
    expect(hasher.needsRehash(hash)).toBe(false);
    const cheaper = new PasswordHasher({ memoryCost: 8_192, timeCost: 1, parallelism: 1 });
    const oldHash = await cheaper.hash('correct horse battery staple');
    expect(hasher.needsRehash(oldHash)).toBe(true);
    expect(cheaper.needsRehash(oldHash)).toBe(false);
  });

  test('needsRehash for other types and malformed hashes', async () => {
    const argon2iHash = await argon2.hash('correct horse battery staple', {
      type: argon2.argon2i,
      ...OWASP_ARGON2ID_PARAMETERS,
    });
    expect(hasher.needsRehash(argon2iHash)).toBe(true);
    expect(hasher.needsRehash('not a hash')).toBe(true);
    expect(hasher.needsRehash('$argon2id$broken')).toBe(true);
  });
});

describe('SecretBox', () => {
  const key = Buffer.alloc(32, 7);
  const box = new SecretBox(key);

  test('opens what it sealed', () => {
    for (const plaintext of ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', '', 'パスワード 🔑']) {
      expect(box.open(box.seal(plaintext))).toBe(plaintext);
    }
  });

  test('lays out version, IV, tag and ciphertext', () => {
    const sealed = box.seal('secret');
    expect(sealed[0]).toBe(1);
    expect(sealed).toHaveLength(1 + 12 + 16 + Buffer.byteLength('secret'));
  });

  test('uses a fresh IV for every seal', () => {
    const first = box.seal('same plaintext');
    const second = box.seal('same plaintext');
    expect(first.subarray(1, 13).equals(second.subarray(1, 13))).toBe(false);
    expect(first.equals(second)).toBe(false);
  });

  test('detects a change to any byte', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP');
    for (let position = 0; position < sealed.length; position++) {
      const tampered = Buffer.from(sealed);
      tampered[position]! ^= 0x01;
      expect(() => box.open(tampered)).toThrow();
    }
  });

  test('rejects truncated values and other keys', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP');
    expect(() => box.open(sealed.subarray(0, 28))).toThrow('shorter than its 29-byte header');
    expect(() => box.open(sealed.subarray(0, sealed.length - 1))).toThrow('failed authentication');
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed)).toThrow('failed authentication');
  });

  test('rejects keys that are not 32 bytes', () => {
    expect(() => new SecretBox(Buffer.alloc(16))).toThrow('32-byte key');
    expect(() => new SecretBox(Buffer.alloc(33))).toThrow('32-byte key');
  });

  test('keeps its own copy of the key', () => {
    const mutableKey = Buffer.alloc(32, 9);
    const ownBox = new SecretBox(mutableKey);
    const sealed = ownBox.seal('secret');
    mutableKey.fill(0);
    expect(ownBox.open(sealed)).toBe('secret');
  });
});

describe('deriveKey', () => {
  const masterKey = Buffer.alloc(32, 3);

  test('derives HKDF-SHA256 with an empty salt', () => {
    // HKDF by hand (RFC 5869): extract with 32 zero bytes as salt, then one expand block.
    const prk = createHmac('sha256', Buffer.alloc(32)).update(masterKey).digest();
    const expected = createHmac('sha256', prk)
      .update(Buffer.concat([Buffer.from('totp-secret'), Buffer.from([1])]))
      .digest();
    expect(deriveKey(masterKey, 'totp-secret').equals(expected)).toBe(true);
  });

  test('gives each label its own key', () => {
    const totpKey = deriveKey(masterKey, 'totp-secret');
    const recoveryKey = deriveKey(masterKey, 'recovery-code');
    expect(totpKey).toHaveLength(32);
    expect(recoveryKey).toHaveLength(32);
    expect(totpKey.equals(recoveryKey)).toBe(false);
    expect(totpKey.equals(masterKey)).toBe(false);
    expect(deriveKey(masterKey, 'totp-secret').equals(totpKey)).toBe(true);
    expect(deriveKey(Buffer.alloc(32, 4), 'totp-secret').equals(totpKey)).toBe(false);
  });

  test('rejects short master keys and empty labels', () => {
    expect(() => deriveKey(Buffer.alloc(16), 'totp-secret')).toThrow('at least 32 bytes');
    expect(() => deriveKey(masterKey, '')).toThrow('non-empty label');
  });
});

describe('TOTP', () => {
  // 10 seconds into a step; otplib would read the real clock if `now` were ignored.
  const now = Date.UTC(2026, 11, 4, 9, 0, 10);
  const step = Math.floor(now / 30_000);
  const secret = createTotpSecret();

  test('creates 20-byte base32 secrets', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(createTotpSecret()).not.toBe(secret);
  });

  test('matches the RFC 6238 SHA-1 test vectors', () => {
    // The RFC's key is the ASCII string "12345678901234567890"; its codes
    // have 8 digits, of which a 6-digit code is the last 6.
    const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    expect(currentTotpCode(rfcSecret, 59_000)).toBe('287082');
    expect(currentTotpCode(rfcSecret, 1_111_111_109_000)).toBe('081804');
    expect(currentTotpCode(rfcSecret, 1_234_567_890_000)).toBe('005924');
  });

  test('accepts the current code and returns its step', () => {
    expect(totpStepAt(now)).toBe(step);
    expect(verifyTotp(secret, currentTotpCode(secret, now), 0, now)).toEqual({ valid: true, step });
  });

  test('accepts one step either side', () => {
    const previous = currentTotpCode(secret, now - 30_000);
    const next = currentTotpCode(secret, now + 30_000);
    expect(verifyTotp(secret, previous, 0, now)).toEqual({ valid: true, step: step - 1 });
    expect(verifyTotp(secret, next, 0, now)).toEqual({ valid: true, step: step + 1 });
  });

  test('rejects codes two steps away', () => {
    const earlier = currentTotpCode(secret, now - 60_000);
    const later = currentTotpCode(secret, now + 60_000);
    expect(verifyTotp(secret, earlier, 0, now)).toEqual({ valid: false });
    expect(verifyTotp(secret, later, 0, now)).toEqual({ valid: false });
  });

  test('window follows steps at their edges', () => {
    const stepStart = step * 30_000;
    const stepEnd = stepStart + 29_999;
    expect(verifyTotp(secret, currentTotpCode(secret, stepStart - 30_000), 0, stepStart)).toEqual({
      valid: true,
      step: step - 1,
    });
    expect(verifyTotp(secret, currentTotpCode(secret, stepStart - 60_000), 0, stepStart)).toEqual({
      valid: false,
    });
    expect(verifyTotp(secret, currentTotpCode(secret, stepEnd + 1), 0, stepEnd)).toEqual({
      valid: true,
      step: step + 1,
    });
    expect(verifyTotp(secret, currentTotpCode(secret, stepEnd + 30_001), 0, stepEnd)).toEqual({
      valid: false,
    });
  });

  test('rejects the same step twice', () => {
    const code = currentTotpCode(secret, now);
    const first = verifyTotp(secret, code, 0, now);
    expect(first).toEqual({ valid: true, step });
    if (!first.valid) return;
    expect(verifyTotp(secret, code, first.step, now)).toEqual({ valid: false });
    expect(verifyTotp(secret, code, first.step, now + 20_000)).toEqual({ valid: false });
  });

  test('rejects steps before the last used one', () => {
    const previous = currentTotpCode(secret, now - 30_000);
    expect(verifyTotp(secret, previous, step, now)).toEqual({ valid: false });
    const next = currentTotpCode(secret, now + 30_000);
    expect(verifyTotp(secret, next, step, now)).toEqual({ valid: true, step: step + 1 });
  });

  test('rejects a last step beyond the window', () => {
    const code = currentTotpCode(secret, now);
    expect(verifyTotp(secret, code, step + 1, now)).toEqual({ valid: false });
    expect(verifyTotp(secret, code, step + 100, now)).toEqual({ valid: false });
  });

  test('rejects a negative last step', () => {
    expect(() => verifyTotp(secret, '123456', -1, now)).toThrow(RangeError);
    expect(() => verifyTotp(secret, '123456', 1.5, now)).toThrow(RangeError);
  });

  test('removes spaces before checking', () => {
    const code = currentTotpCode(secret, now);
    const spaced = ` ${code.slice(0, 3)} ${code.slice(3)} `;
    expect(verifyTotp(secret, spaced, 0, now)).toEqual({ valid: true, step });
  });

  test('rejects anything but 6 digits', () => {
    const code = currentTotpCode(secret, now);
    const fullWidth = [...code]
      .map((digit) => String.fromCharCode(0xff10 + Number(digit)))
      .join('');
    for (const input of [
      '',
      code.slice(0, 5),
      `${code}0`,
      `0${code}`,
      `${code.slice(0, 5)}a`,
      'abcdef',
      `${code.slice(0, 3)}-${code.slice(3)}`,
      fullWidth,
    ]) {
      expect(verifyTotp(secret, input, 0, now)).toEqual({ valid: false });
    }
  });

  test('builds an otpauth URI', () => {
    const uri = new URL(totpUri(secret, 'hanako', 'Prepaid Wallet'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Prepaid Wallet:hanako');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('Prepaid Wallet');
  });

  test('renders the URI as a PNG data URL', async () => {
    const dataUrl = await totpQrCodeDataUrl(totpUri(secret, 'hanako', 'Prepaid Wallet'));
    expect(dataUrl.startsWith('data:image/png;base64,')).toBe(true);
    const png = Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64');
    expect(
      png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    ).toBe(true);
  });
});

describe('recovery codes', () => {
  const codePattern = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}$/;

  test('alphabet has no look-alike symbols', () => {
    expect(RECOVERY_CODE_ALPHABET).toHaveLength(31);
    expect(new Set(RECOVERY_CODE_ALPHABET).size).toBe(31);
    expect(RECOVERY_CODE_ALPHABET).not.toMatch(/[0O1IL]/);
  });

  test('generates 10 distinct formatted codes', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(codePattern);
  });

  test('generates the requested count', () => {
    expect(generateRecoveryCodes(3)).toHaveLength(3);
    expect(() => generateRecoveryCodes(0)).toThrow(RangeError);
    expect(() => generateRecoveryCodes(1.5)).toThrow(RangeError);
  });

  test('uses every symbol of the alphabet', () => {
    const seen = new Set<string>();
    for (let batch = 0; batch < 100; batch++) {
      for (const code of generateRecoveryCodes()) {
        for (const symbol of code.replace('-', '')) seen.add(symbol);
      }
    }
    expect([...seen].sort().join('')).toBe(RECOVERY_CODE_ALPHABET);
  });

  test.each([
    'abcde fghjk',
    'ABCDE-FGHJK',
    ' abcde-fghjk ',
    'abcdefghjk',
    'AbCdE - fGhJk',
    'ab cd ef gh jk',
  ])('normalises %j', (input) => {
    expect(normaliseRecoveryCode(input)).toBe('ABCDEFGHJK');
  });

  test.each([
    '',
    'ABCDE-FGHJ',
    'ABCDE-FGHJKM',
    'ABCDE-FGHJ0',
    'ABCDE-FGHJO',
    'ABCDE-FGHJ1',
    'ABCDE-FGHJI',
    'ABCDE-FGHJL',
    'ABCDE_FGHJK',
    'ＡＢＣＤＥ-ＦＧＨＪＫ',
    `ABCDE${' '.repeat(60)}FGHJK`,
  ])('rejects %j', (input) => {
    expect(normaliseRecoveryCode(input)).toBeUndefined();
  });

  test('hash is stable per key', () => {
    const key = Buffer.alloc(32, 5);
    const hash = hashRecoveryCode(key, 'ABCDE-FGHJK');
    expect(hash).toHaveLength(32);
    expect(hashRecoveryCode(key, 'abcde fghjk').equals(hash)).toBe(true);
    expect(hashRecoveryCode(key, 'ABCDEFGHJK').equals(hash)).toBe(true);
    expect(hash.equals(createHmac('sha256', key).update('ABCDEFGHJK').digest())).toBe(true);
  });

  test('hash differs across keys and codes', () => {
    const key = Buffer.alloc(32, 5);
    const hash = hashRecoveryCode(key, 'ABCDE-FGHJK');
    expect(hashRecoveryCode(Buffer.alloc(32, 6), 'ABCDE-FGHJK').equals(hash)).toBe(false);
    expect(hashRecoveryCode(key, 'ABCDE-FGHJM').equals(hash)).toBe(false);
  });

  test('hash rejects invalid codes and short keys', () => {
    expect(() => hashRecoveryCode(Buffer.alloc(32), 'not a code')).toThrow(RangeError);
    expect(() => hashRecoveryCode(Buffer.alloc(16), 'ABCDE-FGHJK')).toThrow('at least 32 bytes');
  });
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
