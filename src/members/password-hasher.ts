import { randomBytes } from 'node:crypto';
import * as argon2 from 'argon2';

/** argon2id cost parameters, in the units of the argon2 package. */
export interface Argon2idParameters {
  /** Memory in KiB. */
  memoryCost: number;
  /** Number of passes over the memory. */
  timeCost: number;
  /** Degree of parallelism (lanes). */
  parallelism: number;
}

/**
 * The argon2id recommendation of the OWASP Password Storage Cheat Sheet:
 * 19 MiB of memory, an iteration count of 2 and 1 degree of parallelism.
 */
export const OWASP_ARGON2ID_PARAMETERS: Readonly<Argon2idParameters> = {
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

/**
 * Hashes and verifies member passwords with argon2id. The hashes are PHC
 * strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a random 16-byte salt.
 */
export class PasswordHasher {
  private readonly dummyHash: Promise<string>;

  constructor(
    private readonly parameters: Readonly<Argon2idParameters> = OWASP_ARGON2ID_PARAMETERS,
  ) {
    // Computed once when the hasher is created, from a random password that is
    // then discarded, so that verifyDummy costs what verify costs for a real member.
    this.dummyHash = this.hash(randomBytes(32).toString('base64url'));
    // A failure reaches the caller of verifyDummy. This handler only keeps it
    // from being reported as an unhandled rejection before anyone awaits it.
    this.dummyHash.catch(() => undefined);
  }

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, ...this.parameters });
  }

  /**
   * Returns whether the password matches the hash. Returns false, and never
   * throws, for a wrong password and for a hash that argon2 cannot parse.
   */
  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password);
    } catch {
      // argon2 throws when the hash is not a PHC string or has invalid
      // parameters. No password can match such a hash.
      return false;
    }
  }

  /**
   * Verifies the password against a hash of an unknown password and returns
   * false. Sign-in calls this for an unknown username, so that its response
   * time does not tell whether the account exists.
   */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(await this.dummyHash, password);
    return false;
  }

  /**
   * Returns whether the hash should be replaced by a fresh hash of the same
   * password: it is not argon2id, its parameters differ from this hasher's,
   * or argon2 cannot parse it.
   */
  needsRehash(hash: string): boolean {
    if (!hash.startsWith('$argon2id$')) return true;
    try {
      return argon2.needsRehash(hash, this.parameters);
    } catch {
      return true;
    }
  }
}
