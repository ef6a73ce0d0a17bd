import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

// Layout of an encrypted prepaid ID: format version, 12-byte IV, 16-byte GCM
// tag, then the ciphertext. The version byte leaves room for key rotation.
const FORMAT_VERSION = 1;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/**
 * Keyed protection of prepaid IDs at rest. The HMAC is deterministic so that
 * an ID can be found by value; the AES-256-GCM copy is random per write and
 * only serves to show an ID to its owner.
 */
export class PrepaidIdVault {
  constructor(
    private readonly hmacKey: Buffer,
    private readonly encryptionKey: Buffer,
  ) {
    if (hmacKey.length !== 32 || encryptionKey.length !== 32) {
      throw new Error('prepaid ID keys must be 32 bytes each');
    }
  }

  lookupHash(digits: string): Buffer {
    return createHmac('sha256', this.hmacKey).update(digits).digest();
  }

  encrypt(digits: string): Buffer {
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.encryptionKey, iv);
    const ciphertext = Buffer.concat([cipher.update(digits, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, cipher.getAuthTag(), ciphertext]);
  }

  decrypt(sealed: Buffer): string {
    if (sealed[0] !== FORMAT_VERSION) {
      throw new Error(`unknown prepaid ID encryption format ${sealed[0]}`);
    }
    const iv = sealed.subarray(1, 1 + IV_LENGTH);
    const tag = sealed.subarray(1 + IV_LENGTH, 1 + IV_LENGTH + TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.encryptionKey, iv);
    decipher.setAuthTag(tag);
    const ciphertext = sealed.subarray(1 + IV_LENGTH + TAG_LENGTH);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  }
}
