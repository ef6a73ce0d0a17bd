import { committedBefore, type Snapshot } from './snapshot';
import type { LedgerEvent } from './ledger-event';

/** Which events a subscriber receives. */
export type EventTopic = { merchantId: string } | { accountId: string };

// A subscriber that falls this far behind is closed rather than allowed to
// grow the server's memory without bound; its client can resubscribe.
const MAX_QUEUED_EVENTS = 1_000;

class Subscriber implements AsyncIterableIterator<LedgerEvent> {
  private readonly queue: LedgerEvent[] = [];
  private waiting?: (result: IteratorResult<LedgerEvent>) => void;
  private failWaiting?: (error: Error) => void;
  private snapshot?: Snapshot;
  private closed = false;
  private failure?: Error;

  constructor(
    readonly topicKey: string,
    readonly tag: string | undefined,
    private readonly onClose: (subscriber: Subscriber) => void,
  ) {}

  get active(): boolean {
    return this.snapshot !== undefined && !this.closed;
  }

  /** Starts delivery; events that had committed before the snapshot are dropped. */
  activate(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    const early = this.queue.splice(0);
    for (const event of early) this.push(event);
  }

  push(event: LedgerEvent): void {
    if (this.closed) return;
    if (this.snapshot && committedBefore(event.xid, this.snapshot)) return;
    if (this.snapshot && this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = undefined;
      resolve({ value: event, done: false });
      return;
    }
    if (this.queue.length >= MAX_QUEUED_EVENTS) {
      this.fail(
        new Error('subscription closed because the client did not keep up with its events'),
      );
      return;
    }
    this.queue.push(event);
  }

  fail(error: Error): void {
    this.failure = error;
    if (this.failWaiting) {
      const reject = this.failWaiting;
      this.waiting = this.failWaiting = undefined;
      reject(error);
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<LedgerEvent>> {
    if (this.snapshot && this.queue.length > 0) {
      return Promise.resolve({ value: this.queue.shift()!, done: false });
    }
    if (this.failure) {
      const error = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<LedgerEvent>> {
    this.queue.length = 0;
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<LedgerEvent>> {
    this.close();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<LedgerEvent> {
    return this;
  }
}

function keyOf(topic: EventTopic): string {
  return 'merchantId' in topic ? `merchant:${topic.merchantId}` : `account:${topic.accountId}`;
}

/**
 * Fans ledger events out to this instance's subscribers. Subscribers are
 * indexed by topic, so publishing costs the same with ten subscribers or ten
 * thousand on other topics.
 */
export class EventHub {
  private readonly byTopic = new Map<string, Set<Subscriber>>();
  /** Other things that end with a session or an API key, such as WebSocket connections. */
  private readonly closers = new Map<string, Set<() => void>>();

  /**
   * Registers a subscriber that buffers events until `activate` gives it the
   * snapshot taken after registration; registering first means that no event
   * committed after the snapshot can slip past between the two steps.
   * `tag` lets a group of subscribers be closed together, such as those of one session.
   */
  subscribe(topic: EventTopic, tag?: string): Subscriber {
    const key = keyOf(topic);
    const subscriber = new Subscriber(key, tag, (closed) => this.remove(closed));
    let set = this.byTopic.get(key);
    if (!set) {
      set = new Set();
      this.byTopic.set(key, set);
    }
    set.add(subscriber);
    return subscriber;
  }

  publish(event: LedgerEvent): void {
    const keys = new Set(event.accountIds.map((accountId) => `account:${accountId}`));
    if (event.merchantId) keys.add(`merchant:${event.merchantId}`);
    for (const key of keys) {
      const set = this.byTopic.get(key);
      if (!set) continue;
      for (const subscriber of set) subscriber.push(event);
    }
  }

  /** Number of subscribers that receive events. */
  get activeCount(): number {
    let count = 0;
    for (const set of this.byTopic.values()) {
      for (const subscriber of set) if (subscriber.active) count++;
    }
    return count;
  }

  /**
   * Registers `close` to run when the tag is closed, as its subscriptions
   * are, and returns the function that unregisters it.
   */
  hold(tag: string, close: () => void): () => void {
    let set = this.closers.get(tag);
    if (!set) {
      set = new Set();
      this.closers.set(tag, set);
    }
    set.add(close);
    return () => {
      const current = this.closers.get(tag);
      current?.delete(close);
      if (current?.size === 0) this.closers.delete(tag);
    };
  }

  /** Distinct tags of the live subscribers that start with `prefix`. */
  tags(prefix: string): string[] {
    const found = new Set<string>();
    for (const set of this.byTopic.values()) {
      for (const subscriber of set)
        if (subscriber.tag?.startsWith(prefix)) found.add(subscriber.tag);
    }
    return [...found];
  }

  /** Tags that `hold` registered and that start with `prefix`. */
  heldTags(prefix: string): string[] {
    return [...this.closers.keys()].filter((tag) => tag.startsWith(prefix));
  }

  /** Ends the subscriptions carrying the given tag, and runs its holders' close functions. */
  closeTagged(tag: string): void {
    for (const set of this.byTopic.values()) {
      for (const subscriber of [...set]) if (subscriber.tag === tag) subscriber.close();
    }
    for (const close of [...(this.closers.get(tag) ?? [])]) close();
  }

  closeAll(): void {
    for (const set of this.byTopic.values()) {
      for (const subscriber of [...set]) subscriber.close();
    }
  }

  private remove(subscriber: Subscriber): void {
    const set = this.byTopic.get(subscriber.topicKey);
    if (!set) return;
    set.delete(subscriber);
    if (set.size === 0) this.byTopic.delete(subscriber.topicKey);
  }
}

export type { Subscriber };
