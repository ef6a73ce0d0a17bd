import { Client } from 'pg';

/** Returns the URL without its password, for messages and logs. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Connects once and runs `SELECT 1`, so that an unreachable or misconfigured
 * database is reported in one sentence before anything else starts.
 */
export async function checkDatabaseConnection(
  databaseUrl: string,
  timeoutMs = 5_000,
): Promise<void> {
  const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const detail = (error as Error).message;
    throw new Error(
      `Cannot connect to the database at ${redactDatabaseUrl(databaseUrl)} (${reason}: ${detail}). ` +
        'Check DATABASE_URL, or unset it to use the embedded Postgres.',
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
