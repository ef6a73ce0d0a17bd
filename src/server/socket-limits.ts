import { GraphQLError, type ExecutionResult } from 'graphql';
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
    return once(() => {
      const remaining = (this.open.get(key) ?? 1) - 1;
      if (remaining > 0) this.open.set(key, remaining);
      else this.open.delete(key);
    });
  }
}

/**
 * The operations of one connection from subscribe until their execution
 * ends. graphql-ws deletes an id when the client completes it, even while
 * the operation still runs, so its own list cannot bound them: a client
 * could complete and reuse one id to start any number of operations.
 */
export class RunningOperations {
  private readonly ids = new Set<string>();

  constructor(private readonly limit: number) {}

  /** Registers the operation and returns the function that ends it, or the error to return. */
  start(id: string): (() => void) | GraphQLError {
    if (this.ids.has(id)) {
      return new GraphQLError(
        `Operation id ${JSON.stringify(id)} is still in use on this connection. Use a new id.`,
        { extensions: { code: 'BAD_REQUEST' } },
      );
    }
    if (this.ids.size >= this.limit) {
      return new GraphQLError(
        `Too many operations on this connection: at most ${this.limit} may run at once. Complete one first, or open another connection.`,
        { extensions: { code: 'TOO_MANY_OPERATIONS' } },
      );
    }
    this.ids.add(id);
    return once(() => this.ids.delete(id));
  }
}

/**
 * Wraps a subscription's event stream so that `end` runs when the stream
 * finishes, fails or is returned, even before its first event.
 */
export function endingWith(
  source: AsyncIterable<ExecutionResult>,
  end: () => void,
): AsyncGenerator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  const wrapped = {
    async next() {
      try {
        const result = await iterator.next();
        if (result.done) end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return(value?: unknown) {
      try {
        return (await iterator.return?.(value)) ?? { done: true as const, value: undefined };
      } finally {
        end();
      }
    },
    async throw(error?: unknown) {
      try {
        if (iterator.throw) return await iterator.throw(error);
        throw error;
      } finally {
        end();
      }
    },
    [Symbol.asyncIterator]() {
      return wrapped;
    },
  };
  return wrapped as unknown as AsyncGenerator<ExecutionResult>;
}

function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}
