import { GraphQLError } from 'graphql';
import type { Caller } from '../graphql/context';

/** Limits of graphql-ws connections, per server process. */
export interface SocketLimits {
  /** Operations running at once on one connection, subscriptions included. */
  operationsPerSocket: number;
  /** Open connections of one member. Members register for free, so this limit is the lower one. */
  socketsPerMember: number;
  /** Open connections of one merchant, over all its API keys. */
  socketsPerMerchant: number;
}

/**
 * Counts the open graphql-ws connections of each member and merchant, so
 * that one caller cannot hold the memory of thousands of sockets. The count
 * is per process: with several instances a caller may open the limit on each.
 */
export class SocketCounter {
  private readonly open = new Map<string, number>();

  constructor(private readonly limits: SocketLimits) {}

  /**
   * Counts a new connection of the caller and returns the function that
   * releases it, or undefined when the caller is at the limit already.
   */
  acquire(caller: Caller): (() => void) | undefined {
    if (caller.kind === 'anonymous') return undefined;
    const key =
      caller.kind === 'member' ? `member:${caller.memberId}` : `merchant:${caller.merchantId}`;
    const limit =
      caller.kind === 'member' ? this.limits.socketsPerMember : this.limits.socketsPerMerchant;
    const count = this.open.get(key) ?? 0;
    if (count >= limit) return undefined;

    this.open.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const remaining = (this.open.get(key) ?? 1) - 1;
      if (remaining > 0) this.open.set(key, remaining);
      else this.open.delete(key);
    };
  }
}

/**
 * Returns the error for an operation over the connection's limit, or
 * undefined. `running` counts the new operation too, because graphql-ws
 * registers its id before the subscribe hook runs.
 */
export function operationLimitError(running: number, limit: number): GraphQLError | undefined {
  if (running <= limit) return undefined;
  return new GraphQLError(
    `Too many operations on this connection: at most ${limit} may run at once. Complete one first, or open another connection.`,
    { extensions: { code: 'TOO_MANY_OPERATIONS' } },
  );
}
