import { ClassType, Field, ID, InterfaceType, ObjectType } from 'type-graphql';
import { badUserInput } from './errors';

@InterfaceType({ description: 'An object with a globally unique, opaque ID.' })
export abstract class Node {
  @Field(() => ID)
  id!: string;
}

/** Encodes a type name and a database id as an opaque global ID. */
export function toGlobalId(type: string, id: string): string {
  return Buffer.from(`${type}:${id}`).toString('base64url');
}

/** Decodes a global ID of the expected type; returns undefined for anything else. */
export function fromGlobalId(type: string, globalId: string): string | undefined {
  const decoded = Buffer.from(globalId, 'base64url').toString('utf8');
  const prefix = `${type}:`;
  if (!decoded.startsWith(prefix)) return undefined;
  return decoded.slice(prefix.length);
}

@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field()
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

export interface Edge<T> {
  cursor: string;
  node: T;
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
}

/** Creates the Relay connection and edge types for a node type. */
export function ConnectionType<T extends object>(nodeType: ClassType<T>, name: string) {
  @ObjectType(`${name}Edge`)
  class EdgeType {
    @Field()
    cursor!: string;

    @Field(() => nodeType)
    node!: T;
  }

  @ObjectType(`${name}Connection`)
  class ConnectionClass {
    @Field(() => [EdgeType])
    edges!: EdgeType[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;
  }
  return ConnectionClass;
}

export const MAX_PAGE_SIZE = 100;

/** Checks `first`; pages hold 1 to 100 items. */
export function pageSize(first: number | undefined | null, fallback = 20): number {
  const size = first ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw badUserInput(`first must be between 1 and ${MAX_PAGE_SIZE}, got ${size}`, 'first');
  }
  return size;
}

/**
 * Keyset position of a row in a list ordered by (created_at, id) descending.
 * `sortTime` is the exact timestamp with microseconds, as produced by
 * exactTimeSql, because a JavaScript Date would cut it to milliseconds and
 * skip or repeat rows that share a millisecond.
 */
export interface TimeKey {
  sortTime: string;
  id: string;
}

/** SQL for the exact UTC text of a timestamptz column, for keyset cursors. */
export function exactTimeSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

const EXACT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a string is a UUID in the lower-case form that Postgres returns. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * Whether an exact time string names a real instant after 1970, as every
 * stored time does: the regex alone lets 2026-13-45 and year 0 through.
 */
function isRealTime(sortTime: string): boolean {
  const date = new Date(sortTime);
  return date.getTime() >= 0 && date.toISOString().slice(0, 23) === sortTime.slice(0, 23);
}

export function encodeTimeCursor(key: TimeKey): string {
  return Buffer.from(JSON.stringify([key.sortTime, key.id])).toString('base64url');
}

export function decodeTimeCursor(cursor: string | undefined | null): TimeKey | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  try {
    const [sortTime, id] = JSON.parse(
      Buffer.from(cursor, 'base64url').toString('utf8'),
    ) as unknown[];
    if (typeof sortTime !== 'string' || !EXACT_TIME.test(sortTime) || !isRealTime(sortTime)) {
      throw new Error('bad time');
    }
    if (typeof id !== 'string' || !isUuid(id)) throw new Error('bad id');
    return { sortTime, id };
  } catch {
    throw badUserInput('after is not a cursor returned by this list', 'after');
  }
}

/** Builds a connection from up to `size + 1` rows fetched after the cursor. */
export function toConnection<Row extends TimeKey, T>(
  rows: Row[],
  size: number,
  hadCursor: boolean,
  map: (row: Row) => T,
): Connection<T> {
  const page = rows.slice(0, size);
  const edges = page.map((row) => ({ cursor: encodeTimeCursor(row), node: map(row) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > size,
      hasPreviousPage: hadCursor,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
