import type { EntityManager } from '@mikro-orm/postgresql';
import { createTransport, type Transporter } from 'nodemailer';
import type { Logger } from '../logging/logger';
import { MailDelivery } from './mail-delivery';
import { describeSendError, smtpEndpoint } from './mail-redaction';

const DEFAULT_POLL_INTERVAL_MS = 1_000;
const DEFAULT_BATCH_SIZE = 10;
const DEFAULT_RETRY_BASE_DELAY_MS = 60_000;
const DEFAULT_SEND_TIMEOUT_MS = 30_000;
// How long stop() lets a send in progress finish before it closes the SMTP connection.
const STOP_GRACE_MS = 3_000;
// Minimum time between two log lines about failed polls.
const POLL_ERROR_LOG_INTERVAL_MS = 60_000;

export interface MailDispatcherOptions {
  /** Returns a fresh EntityManager for each database step, such as `() => orm.em.fork()`. */
  forkEntityManager: () => EntityManager;
  logger: Logger;
  /** smtp:// or smtps:// URL. When it is unset, due mails are marked `kept` and stay in the outbox unsent. */
  smtpUrl: string | undefined;
  /** From header of every mail, such as `Prepaid Wallet <no-reply@example.com>`. */
  mailFrom: string;
  /** Interval between polls of the outbox, in milliseconds (default 1000). `wake()` polls at once. */
  pollIntervalMs?: number;
  /** Maximum number of mails claimed per database transaction (default 10). */
  batchSize?: number;
  /** Delay before the second attempt, in milliseconds (default 60000). It doubles for each later attempt. */
  retryBaseDelayMs?: number;
  /** Time after which a single send is aborted and counted as failed, in milliseconds (default 30000). */
  sendTimeoutMs?: number;
}

/**
 * Sends the mails of the outbox table over SMTP. Every server process runs
 * one, and each mail is sent by one of them.
 *
 * A dispatcher claims due rows with `FOR UPDATE SKIP LOCKED`, so that
 * concurrent dispatchers take disjoint rows without waiting for each other.
 * The claim counts the attempt and pushes `next_attempt_at` past the time the
 * whole batch can take to send (the lease), then commits. The sends run
 * outside any database transaction, and each result is written in its own
 * statement. If the process dies during a send, another dispatcher takes the
 * row again once the lease has expired. A mail is therefore sent twice only
 * when the SMTP server accepted it but the row was not marked `sent`: the
 * process stopped in between, the update failed, or the send timed out after
 * the server had already accepted the message.
 *
 * Without an SMTP URL, due rows are marked `kept` and logged without their
 * body, because bodies contain single-use tokens. Developers read them in the
 * outbox table or with the `mail:outbox` admin command.
 */
export class MailDispatcher {
  private readonly transport?: Transporter;
  private readonly delivery: MailDelivery;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly sendTimeoutMs: number;
  private pollTimer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private pollAgain = false;
  private started = false;
  private stopped = false;
  private failedPolls = 0;
  private lastPollErrorLoggedAt = 0;

  constructor(private readonly options: MailDispatcherOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const retryBaseDelayMs = options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
    this.sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.delivery = new MailDelivery({
      forkEntityManager: options.forkEntityManager,
      logger: options.logger,
      batchSize: this.batchSize,
      retryBaseDelayMs,
      sendTimeoutMs: this.sendTimeoutMs,
    });
    if (options.smtpUrl) {
      this.transport = createTransport(
        {
          url: options.smtpUrl,
          // One pooled connection is enough, because the dispatcher sends one mail at a time.
          pool: true,
          maxConnections: 1,
          connectionTimeout: 10_000,
          greetingTimeout: 10_000,
          socketTimeout: this.sendTimeoutMs,
        },
        { from: options.mailFrom },
      );
      // A pooled transport emits 'error' when an idle connection breaks, and an
      // unhandled 'error' event would end the process.
      this.transport.on('error', (error: Error) =>
        options.logger.warn(
          { err: describeSendError(error) },
          'SMTP connection failed; the next send reconnects',
        ),
      );
    }
  }

  /** Mails this dispatcher has handed to the SMTP server since it was created. */
  get sentCount(): number {
    return this.delivery.sentCount;
  }

  /** Mails this dispatcher has marked `kept` since it was created. */
  get keptCount(): number {
    return this.delivery.keptCount;
  }

  /** Starts the poll timer and polls right away. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.pollTimer = setInterval(() => this.wake(), this.pollIntervalMs);
    this.pollTimer.unref();
    if (this.options.smtpUrl) {
      this.options.logger.info(
        { smtp: smtpEndpoint(this.options.smtpUrl) },
        'mail dispatcher started',
      );
    } else {
      this.options.logger.info(
        'mail dispatcher started without SMTP_URL; mails are kept in the outbox and not sent',
      );
    }
    this.wake();
  }

  /** Polls the outbox now, for example after a transaction that enqueued a mail has committed. */
  wake(): void {
    if (!this.started || this.stopped) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
    });
  }

  /**
   * Stops polling, waits a moment for the send in progress, returns the
   * batch's unsent mails to the outbox for other dispatchers, and closes the
   * SMTP connection.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pollTimer);
    // A server that stops replying would hold the shutdown for the whole
    // socket timeout. Closing the connection fails the send, and the mail is
    // tried again later, perhaps a second time if the server had taken it.
    if (this.polling && !(await settlesWithin(this.polling, STOP_GRACE_MS))) {
      this.options.logger.warn(
        { graceMs: STOP_GRACE_MS },
        'SMTP send still in progress at shutdown; closing the connection',
      );
      // Without force, the pool lets a connection finish its delivery first.
      this.transport?.close({ force: true });
    }
    await this.polling;
    this.transport?.close();
    if (this.started)
      this.options.logger.info(
        { sent: this.sentCount, kept: this.keptCount },
        'mail dispatcher stopped',
      );
  }

  private async poll(): Promise<void> {
    try {
      do {
        this.pollAgain = false;
        await this.dispatchDueMails();
      } while (this.pollAgain && !this.stopped);
      if (this.failedPolls > 0) {
        this.options.logger.info({ failedPolls: this.failedPolls }, 'mail dispatch recovered');
        this.failedPolls = 0;
      }
    } catch (error) {
      this.logPollError(error);
    }
  }

  /** Logs a failed poll, at most once per minute while the polls keep failing (a database outage, for example). */
  private logPollError(error: unknown): void {
    this.failedPolls++;
    const now = Date.now();
    if (this.failedPolls > 1 && now - this.lastPollErrorLoggedAt < POLL_ERROR_LOG_INTERVAL_MS)
      return;
    this.lastPollErrorLoggedAt = now;
    this.options.logger.error(
      { err: error, failedPolls: this.failedPolls },
      'mail dispatch failed; retrying on the next poll',
    );
  }

  private async dispatchDueMails(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const count = this.transport
        ? await this.sendBatch(this.transport)
        : await this.delivery.keepBatch();
      if (count < this.batchSize) return;
    }
  }

  /** Sends one claimed batch and returns the number of rows claimed. */
  private async sendBatch(transport: Transporter): Promise<number> {
    const batch = await this.delivery.claimDueMails();
    for (const [index, mail] of batch.entries()) {
      if (this.stopped) {
        await this.delivery.release(batch.slice(index));
        break;
      }
      await this.delivery.send(transport, mail);
    }
    return batch.length;
  }
}

/** Resolves true if the promise settles within the time, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, milliseconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), milliseconds);
  });
  const settled = promise.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
