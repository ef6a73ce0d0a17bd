import { createHash, randomBytes } from 'node:crypto';

/** Prefixes that tell the kinds of bearer secrets apart at a glance and in leaked-secret scans. */
export const TOKEN_PREFIXES = {
  session: 'ms_',
  challenge: 'mc_',
  emailVerification: 'ev_',
  passwordReset: 'pr_',
} as const;

/**
 * Creates a random token (256 bits) and the SHA-256 that is stored instead of it.
 * A fast hash is enough for a secret of this size: it cannot be guessed.
 */
export function newToken(prefix: string): { token: string; hash: Buffer } {
  const token = `${prefix}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Checks that a string can be a token of this kind, before any database work. */
export function looksLikeToken(value: string, prefix: string): boolean {
  return (
    value.length === prefix.length + 43 &&
    value.startsWith(prefix) &&
    /^[A-Za-z0-9_-]+$/.test(value.slice(prefix.length))
  );
}
