import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Knex } from '@mikro-orm/knex';
import { escapeLiteral, type QueryConfig, type QueryResult } from 'pg';

/**
 * Raw SQL on the EntityManager's connection, inside its database transaction
 * when it has one. Placeholders are `?`; pass arrays as Postgres array
 * literals cast in SQL (`?::bigint[]`).
 */
export interface Sql {
  query<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
  one<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row | undefined>;
}

/** The part of a pg Client that a query needs. */
interface PgConnection {
  query(config: QueryConfig): Promise<QueryResult>;
  query(text: string): Promise<QueryResult | QueryResult[]>;
}

/** Called before each statement that sqlFor runs, as by tests that count statements. */
export type StatementObserver = (text: string) => void;

const observers = new Set<StatementObserver>();

/** Calls `observer` with the text of every statement from now on; returns a function that stops it. */
export function observeStatements(observer: StatementObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

interface KnexClient {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(connection: PgConnection): Promise<void>;
}

function knexClientOf(em: EntityManager): KnexClient {
  const transaction = em.getTransactionContext<Knex.Transaction>();
  return (transaction ?? em.getConnection().getKnex()).client as unknown as KnexClient;
}

function sqlOn(connectionFor: () => Promise<[PgConnection, () => Promise<void>]>): Sql {
  const query = async <Row>(text: string, params: unknown[] = []): Promise<Row[]> => {
    for (const observer of observers) observer(text);
    const [connection, release] = await connectionFor();
    try {
      const result = await connection.query(prepare(text, params));
      return result.rows as Row[];
    } finally {
      await release();
    }
  };
  return {
    query,
    async one<Row>(text: string, params: unknown[] = []) {
      const rows = await query<Row>(text, params);
      return rows[0];
    },
  };
}

/**
 * Runs statements on a pg connection of MikroORM's pool, or of its current
 * transaction, as server-side prepared statements with bound parameters.
 * Going around MikroORM's and knex's query layers took about half the time
 * per round trip in a measurement here, and a prepared statement is parsed
 * once per connection.
 */
export function sqlFor(em: EntityManager): Sql {
  return sqlOn(async () => {
    const client = knexClientOf(em);
    const connection = await client.acquireConnection();
    return [connection, () => client.releaseConnection(connection)];
  });
}

/** One pool connection, held for a database transaction that its user begins and ends itself. */
export interface Session {
  /** Prepared statements on the session's connection. */
  sql: Sql;
  /**
   * Runs one or more statements in a single round trip, with each `?`
   * replaced by its parameter as a literal, and returns the rows of the
   * first statement. Used to send BEGIN or COMMIT along with a statement.
   */
  script<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
}

/** Runs `action` with a connection of the EntityManager's pool of its own, outside any transaction of the EntityManager. */
export async function withSession<T>(
  em: EntityManager,
  action: (session: Session) => Promise<T>,
): Promise<T> {
  const client = em.getConnection().getKnex().client as unknown as KnexClient;
  const connection = await client.acquireConnection();
  let failed = false;
  try {
    return await action({
      sql: sqlOn(async () => [connection, async () => undefined]),
      async script<Row>(text: string, params: unknown[] = []) {
        for (const observer of observers) observer(text);
        const results = await connection.query(inlineParameters(text, params));
        const first = Array.isArray(results) ? results[0] : results;
        return (first?.rows ?? []) as Row[];
      },
    });
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // A transaction left open by a failure must not reach the pool's next user.
    if (failed) {
      await connection.query('ROLLBACK').catch((rollbackError: unknown) => {
        // knex's pool destroys a connection so marked instead of lending it again.
        (connection as { __knex__disposed?: unknown }).__knex__disposed = rollbackError;
      });
    }
    await client.releaseConnection(connection);
  }
}

interface Statement {
  name: string | undefined;
  text: string;
}

// Statements built with a varying number of placeholders would each become
// a prepared statement on every connection, so only this many get a name.
const MAX_NAMED_STATEMENTS = 500;
const statements = new Map<string, Statement>();

function prepare(text: string, params: unknown[]): QueryConfig {
  let statement = statements.get(text);
  if (!statement) {
    const numbered = numberPlaceholders(text);
    const name =
      statements.size < MAX_NAMED_STATEMENTS
        ? `s${createHash('sha1').update(numbered).digest('hex').slice(0, 20)}`
        : undefined;
    statement = { name, text: numbered };
    if (name) statements.set(text, statement);
  }
  return { name: statement.name, text: statement.text, values: params };
}

/** Turns `?` placeholders into `$1`, `$2`, …, leaving quoted strings and identifiers alone. */
export function numberPlaceholders(text: string): string {
  let count = 0;
  return replacePlaceholders(text, () => `$${++count}`);
}

/** Replaces each `?` placeholder with its parameter written as an SQL literal. */
export function inlineParameters(text: string, params: unknown[]): string {
  let index = 0;
  const result = replacePlaceholders(text, () => {
    if (index >= params.length) throw new RangeError(`too few parameters for: ${text}`);
    return literal(params[index++]);
  });
  if (index !== params.length) throw new RangeError(`too many parameters for: ${text}`);
  return result;
}

function replacePlaceholders(text: string, replacement: () => string): string {
  let result = '';
  let quote: string | undefined;
  for (const character of text) {
    if (quote) {
      if (character === quote) quote = undefined;
    } else if (character === "'" || character === '"') {
      quote = character;
    } else if (character === '?') {
      result += replacement();
      continue;
    }
    result += character;
  }
  return result;
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`cannot write ${value} as an SQL literal`);
    // Parentheses keep a negative number whole after an operator or before a cast.
    return `(${value})`;
  }
  if (typeof value === 'bigint') return `(${value})`;
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'string') return escapeLiteral(value);
  if (Buffer.isBuffer(value)) return `decode('${value.toString('hex')}', 'hex')`;
  if (value instanceof Date) return escapeLiteral(value.toISOString());
  throw new TypeError(`cannot write a ${typeof value} as an SQL literal`);
}

/** Formats ids as a Postgres array literal for a `?::bigint[]` or `?::uuid[]` parameter. */
export function arrayLiteral(values: readonly (string | number)[]): string {
  for (const value of values) {
    if (!/^[0-9a-fA-F-]+$/.test(String(value))) {
      throw new TypeError(`array literal accepts only ids, got "${value}"`);
    }
  }
  return `{${values.join(',')}}`;
}
