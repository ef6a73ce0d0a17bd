import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { arrayLiteral, type Sql } from '../database/sql';
import { API_KEY_SCOPES, type ApiKeyScope } from './api-key.entity';

// Key format: `mk_<prefix>_<secret>`. The prefix (12 hex digits) finds the
// row; the secret (32 random bytes) is compared by hash. A SHA-256 suffices
// for a 256-bit random secret: unlike a password, it cannot be guessed from
// a dictionary, so a slow hash would only slow every request.
const KEY_PATTERN = /^mk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** Channel on which a revoked key's id is announced, so that every instance closes its subscriptions. */
export const API_KEY_REVOKED_CHANNEL = 'api_key_revoked';

export interface MerchantCaller {
  merchantId: string;
  apiKeyId: string;
  scopes: ApiKeyScope[];
}

export interface ApiKeySummary {
  id: string;
  prefix: string;
  label: string;
  scopes: ApiKeyScope[];
  createdAt: Date;
  revokedAt: Date | null;
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Creates, lists, revokes and verifies merchants' API keys. */
export class ApiKeyService {
  /** Creates a key and returns it in full; this is the only time the secret exists outside the caller. */
  async create(
    sql: Sql,
    merchantId: string,
    label: string,
    scopes: readonly ApiKeyScope[] = API_KEY_SCOPES,
  ): Promise<{ id: string; prefix: string; key: string }> {
    for (const scope of scopes) {
      if (!API_KEY_SCOPES.includes(scope)) {
        throw new RangeError(
          `unknown API key scope "${scope}"; expected one of ${API_KEY_SCOPES.join(', ')}`,
        );
      }
    }
    const prefix = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const row = await sql.one<{ id: string }>(
      `INSERT INTO merchant_api_key (merchant_id, prefix, secret_hash, label, scopes)
       VALUES (?, ?, ?, ?, ?::text[]) RETURNING id`,
      [merchantId, prefix, hashSecret(secret), label, `{${scopes.join(',')}}`],
    );
    return { id: row!.id, prefix, key: `mk_${prefix}_${secret}` };
  }

  async list(sql: Sql, merchantId: string): Promise<ApiKeySummary[]> {
    const rows = await sql.query<{
      id: string;
      prefix: string;
      label: string;
      scopes: ApiKeyScope[];
      created_at: string;
      revoked_at: string | null;
    }>(
      `SELECT id, prefix, label, scopes, created_at, revoked_at FROM merchant_api_key
        WHERE merchant_id = ? ORDER BY created_at, id`,
      [merchantId],
    );
    return rows.map((row) => ({
      id: row.id,
      prefix: row.prefix,
      label: row.label,
      scopes: row.scopes,
      createdAt: new Date(row.created_at),
      revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
    }));
  }

  /**
   * Revokes a key by its prefix; returns false when no active key has that
   * prefix. Requests with the key fail from the next one on, and a NOTIFY on
   * API_KEY_REVOKED_CHANNEL (delivered at commit) closes its open
   * subscriptions on every server instance, also when the operator CLI revokes it.
   */
  async revoke(sql: Sql, prefix: string): Promise<boolean> {
    const rows = await sql.query(
      `WITH revoked AS (
         UPDATE merchant_api_key SET revoked_at = now() WHERE prefix = ? AND revoked_at IS NULL RETURNING id
       )
       SELECT id, pg_notify(?, id::text) FROM revoked`,
      [prefix, API_KEY_REVOKED_CHANNEL],
    );
    return rows.length > 0;
  }

  /** Returns which of the given key ids are revoked or gone, for closing their subscriptions. */
  async revokedAmong(sql: Sql, keyIds: string[]): Promise<Set<string>> {
    if (keyIds.length === 0) return new Set();
    const rows = await sql.query<{ id: string }>(
      'SELECT id FROM merchant_api_key WHERE id = ANY(?::uuid[]) AND revoked_at IS NULL',
      [arrayLiteral(keyIds)],
    );
    const active = new Set(rows.map((row) => row.id));
    return new Set(keyIds.filter((id) => !active.has(id)));
  }

  /** Returns the caller for a presented key, or undefined for a malformed, unknown or revoked key. */
  async verify(sql: Sql, presented: string): Promise<MerchantCaller | undefined> {
    const match = KEY_PATTERN.exec(presented);
    if (!match) return undefined;
    const [, prefix, secret] = match;
    const row = await sql.one<{
      id: string;
      merchant_id: string;
      secret_hash: Buffer;
      scopes: ApiKeyScope[];
    }>(
      `SELECT id, merchant_id, secret_hash, scopes FROM merchant_api_key
        WHERE prefix = ? AND revoked_at IS NULL`,
      [prefix],
    );
    if (!row || !timingSafeEqual(row.secret_hash, hashSecret(secret!))) return undefined;
    return { merchantId: row.merchant_id, apiKeyId: row.id, scopes: row.scopes };
  }
}

export function isApiKey(token: string): boolean {
  return token.startsWith('mk_');
}
