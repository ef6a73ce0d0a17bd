import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Raw SQL on the EntityManager's connection, inside its database transaction
 * when it has one. Placeholders are knex-style `?`; pass arrays as Postgres
 * array literals cast in SQL (`?::bigint[]`), because knex expands a JS array
 * into a list of placeholders.
 */
export interface Sql {
  query<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row[]>;
  one<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<Row | undefined>;
}

export function sqlFor(em: EntityManager): Sql {
  const connection = em.getConnection();
  const query = <Row>(text: string, params: unknown[] = []) =>
    connection.execute<Row[]>(text, params, 'all', em.getTransactionContext());
  return {
    query,
    async one<Row>(text: string, params: unknown[] = []) {
      const rows = await query<Row>(text, params);
      return rows[0];
    },
  };
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
