import { Client, type QueryResult, type QueryResultRow } from 'pg';
import type { Logger } from '../logging/logger';
import type { EventHub } from './event-hub';
import { readLedgerEvent, type LedgerEventRow } from './ledger-event';
import { parseSnapshot, type Snapshot } from './snapshot';

const CHANNEL = 'ledger_events';
const BATCH_SIZE = 500;
const RECONNECT_DELAY_MS = [100, 500, 1_000, 2_000, 5_000];
// While an event is held back by a transaction that is still running, the
// relay looks again after this delay instead of waiting for the next wake-up,
// because a transaction that rolls back sends no notification.
const BLOCKED_RETRY_MS = 20;

export interface EventRelayOptions {
  databaseUrl: string;
  hub: EventHub;
  logger: Logger;
  pollIntervalMs: number;
}

/**
 * Delivers outbox rows to this instance's EventHub, after commit, in one order
 * that every instance agrees on, with none skipped and none repeated.
 *
 * Rows are read in (xid, id) order, and only those whose transaction id is
 * below the oldest transaction still running (the snapshot's xmin). A
 * transaction that has not committed yet can still add a row that sorts before
 * rows already committed, so a reader that passed it would skip that row.
 * Below xmin every transaction has ended, so those rows are final.
 *
 * Instances are woken by NOTIFY, sent after the money's commit on this
 * relay's own connection, never inside the money's transaction: a pending
 * NOTIFY takes a database-wide lock at commit, which would serialise every
 * charge. A timer poll covers notifications lost with a dropped connection.
 */
export class EventRelay {
  private client?: Client;
  private cursor = { xid: '0', id: '0' };
  private polling = false;
  private pollAgain = false;
  private stopped = false;
  private notifyPending = false;
  private notifying = false;
  private reconnectAttempt = 0;
  private pollTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private delivered = 0;
  private queue: Promise<void> = Promise.resolve();
  private readonly channelHandlers = new Map<string, (payload: string) => void>();

  constructor(private readonly options: EventRelayOptions) {}

  /**
   * Calls `handler` with the payload of every NOTIFY on `channel`, from any
   * instance, this one included. Register before start().
   */
  listen(channel: string, handler: (payload: string) => void): void {
    if (!/^[a-z_]+$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
    this.channelHandlers.set(channel, handler);
  }

  /** Sends a NOTIFY on this relay's connection, outside any money transaction. */
  async notify(channel: string, payload: string): Promise<void> {
    if (!this.client) throw new Error('event relay is not connected');
    await this.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /** Connects, starts listening and sets the cursor so that only later events are delivered. */
  async start(): Promise<void> {
    await this.connect();
    const row = await this.query<{ xmin: string }>(
      'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin',
    );
    // Every row of a transaction below xmin committed before this start.
    this.cursor = { xid: (BigInt(row.rows[0]!.xmin) - 1n).toString(), id: '9223372036854775807' };
    this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Returns the current snapshot, which a new subscriber needs before it goes live. */
  async snapshot(): Promise<Snapshot> {
    const row = await this.query<{ snapshot: string }>(
      'SELECT pg_current_snapshot()::text AS snapshot',
    );
    return parseSnapshot(row.rows[0]!.snapshot);
  }

  /** Number of events handed to the hub since start. */
  get deliveredCount(): number {
    return this.delivered;
  }

  /**
   * Reads the outbox at once after this instance committed a ledger
   * transaction, and wakes the other instances with one NOTIFY. Commits that
   * happen while a NOTIFY is under way share the next one.
   */
  committed(): void {
    this.wake();
    this.notifyPending = true;
    void this.sendNotify();
  }

  wake(): void {
    if (this.stopped || !this.client) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    void this.poll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      do {
        this.pollAgain = false;
        const blocked = await this.readBatches();
        if (blocked) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => this.wake(), BLOCKED_RETRY_MS);
        }
      } while (this.pollAgain && !this.stopped);
    } catch (error) {
      if (!this.stopped)
        this.options.logger.error({ err: error }, 'reading the event outbox failed');
    } finally {
      this.polling = false;
    }
  }

  /** Delivers every final row after the cursor; returns whether a running transaction held rows back. */
  private async readBatches(): Promise<boolean> {
    for (;;) {
      if (!this.client) return false;
      const result = await this.query<LedgerEventRow & { final: boolean }>(
        `SELECT e.id, e.xid::text AS xid, e.kind, e.merchant_id, e.account_ids, e.payload,
                e.xid < pg_snapshot_xmin(pg_current_snapshot()) AS final
           FROM ledger_event e
          WHERE (e.xid, e.id) > ($1::xid8, $2::bigint)
          ORDER BY e.xid, e.id
          LIMIT ${BATCH_SIZE}`,
        [this.cursor.xid, this.cursor.id],
      );
      for (const row of result.rows) {
        if (!row.final) return true;
        this.cursor = { xid: row.xid, id: row.id };
        this.delivered++;
        this.options.hub.publish(readLedgerEvent(row));
      }
      if (result.rows.length < BATCH_SIZE) return false;
    }
  }

  private async sendNotify(): Promise<void> {
    if (this.notifying || this.stopped) return;
    this.notifying = true;
    try {
      while (this.notifyPending && this.client && !this.stopped) {
        this.notifyPending = false;
        await this.query(`NOTIFY ${CHANNEL}`);
      }
    } catch (error) {
      // The other instances still find the event on their next timer poll.
      if (!this.stopped)
        this.options.logger.warn({ err: error }, 'sending the ledger event NOTIFY failed');
    } finally {
      this.notifying = false;
    }
  }

  /**
   * Runs one query on the relay's connection after the previous one has
   * finished. The poller, the subscribers' snapshots and the NOTIFYs all use
   * this one connection, and pg warns about (and will refuse) overlapping
   * queries on a client.
   */
  private query<Row extends QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<QueryResult<Row>> {
    const run = this.queue.then(() => {
      const client = this.client;
      if (!client) throw new Error('event relay is not connected');
      return client.query<Row>(text, values);
    });
    // The next query waits for this one, whether it succeeds or fails.
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.options.databaseUrl });
    // A pg client emits 'error' when its connection breaks; without a
    // listener that would end the process.
    client.on('error', (error) => this.handleDisconnect(client, error));
    client.on('end', () => this.handleDisconnect(client));
    client.on('notification', (message) => {
      const handler = this.channelHandlers.get(message.channel);
      if (handler) handler(message.payload ?? '');
      else this.wake();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    for (const channel of this.channelHandlers.keys()) await client.query(`LISTEN ${channel}`);
    this.client = client;
    this.reconnectAttempt = 0;
  }

  private handleDisconnect(client: Client, error?: Error): void {
    if (this.stopped || this.client !== client) return;
    this.client = undefined;
    this.options.logger.warn(
      { err: error },
      'event relay lost its database connection; reconnecting',
    );
    client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay =
      RECONNECT_DELAY_MS[Math.min(this.reconnectAttempt, RECONNECT_DELAY_MS.length - 1)];
    this.reconnectAttempt++;
    setTimeout(async () => {
      if (this.stopped) return;
      try {
        await this.connect();
        this.options.logger.info('event relay reconnected');
        this.wake();
      } catch (error) {
        this.options.logger.warn(
          { err: error, attempt: this.reconnectAttempt },
          'event relay reconnect failed',
        );
        this.scheduleReconnect();
      }
    }, delay).unref();
  }
}
