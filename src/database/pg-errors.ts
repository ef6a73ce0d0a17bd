/** Postgres SQLSTATE codes that the application handles by name. */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_CHECK_VIOLATION = '23514';
export const PG_SERIALIZATION_FAILURE = '40001';
export const PG_DEADLOCK_DETECTED = '40P01';
export const PG_LOCK_NOT_AVAILABLE = '55P03';

interface PgErrorFields {
  code?: string;
  constraint?: string;
}

/** Reads the SQLSTATE and constraint of a pg error, also when MikroORM has wrapped it. */
export function pgErrorFields(error: unknown): PgErrorFields {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const candidate = current as PgErrorFields & { previous?: unknown; cause?: unknown };
    if (typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code)) {
      return { code: candidate.code, constraint: candidate.constraint };
    }
    current = candidate.previous ?? candidate.cause;
  }
  return {};
}

/**
 * Errors after which the whole database transaction may be run again with
 * the same input: a serialization failure, a deadlock or a lock timeout.
 */
export function isRetryableDatabaseError(error: unknown): boolean {
  const { code } = pgErrorFields(error);
  return (
    code === PG_SERIALIZATION_FAILURE ||
    code === PG_DEADLOCK_DETECTED ||
    code === PG_LOCK_NOT_AVAILABLE
  );
}
