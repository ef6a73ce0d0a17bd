import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

// Layout of a sealed value: format version, 12-byte IV, 16-byte GCM tag, then
// the ciphertext. The version byte leaves room for key rotation.
const FORMAT_VERSION = 1;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const HEADER_LENGTH = 1 + IV_LENGTH + TAG_LENGTH;
const KEY_LENGTH = 32;

/**
 * Encrypts short secrets at rest, such as TOTP secrets, with AES-256-GCM.
 * Every seal uses a fresh random IV, and open detects any change to the
 * sealed bytes, the version byte included.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_LENGTH) {
      throw new RangeError(`SecretBox needs a ${KEY_LENGTH}-byte key, got ${key.length} bytes`);
    }
    // A copy, so that a caller who reuses or zeroes its buffer cannot change the key.
    this.key = Buffer.from(key);
  }

  seal(plaintext: string): Buffer {
    const version = Buffer.from([FORMAT_VERSION]);
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_LENGTH });
    // The version byte is authenticated as associated data, so it cannot be changed unnoticed.
    cipher.setAAD(version);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([version, iv, cipher.getAuthTag(), ciphertext]);
  }

  /**
   * Decrypts a value from seal. Throws when it is truncated, has an unknown
   * format version, or fails authentication.
   */
  open(sealed: Buffer): string {
    if (sealed.length < HEADER_LENGTH) {
      throw new Error(
        `sealed value is ${sealed.length} bytes, shorter than its ${HEADER_LENGTH}-byte header`,
      );
    }
    if (sealed[0] !== FORMAT_VERSION) {
      throw new Error(`unknown sealed value format version ${sealed[0]}`);
    }
    const iv = sealed.subarray(1, 1 + IV_LENGTH);
    const tag = sealed.subarray(1 + IV_LENGTH, HEADER_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(sealed.subarray(0, 1));
    decipher.setAuthTag(tag);
    const plaintext = decipher.update(sealed.subarray(HEADER_LENGTH));
    try {
      return Buffer.concat([plaintext, decipher.final()]).toString('utf8');
    } catch (error) {
      throw new Error(
        'sealed value failed authentication: it was changed or sealed with another key',
        {
          cause: error,
        },
      );
    }
  }
}

/**
 * Derives an independent 32-byte subkey from a master key with HKDF-SHA256
 * (RFC 5869). Each use of the master key takes its own label, such as
 * "totp-secret", and no subkey reveals the master key or another subkey.
 * The salt is empty, which RFC 5869 allows: HKDF then uses 32 zero bytes.
 */
export function deriveKey(masterKey: Buffer, label: string): Buffer {
  if (masterKey.length < KEY_LENGTH) {
    throw new RangeError(
      `deriveKey needs a master key of at least ${KEY_LENGTH} bytes, got ${masterKey.length}`,
    );
  }
  if (label.length === 0) {
    throw new RangeError('deriveKey needs a non-empty label');
  }
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), label, KEY_LENGTH));
}
