import type { EntityManager } from '@mikro-orm/postgresql';
import { createTransport, type Transporter } from 'nodemailer';
import { arrayLiteral, sqlFor, type Sql } from '../database/sql';
import type { Logger } from '../logging/logger';
import type { MailKind } from './mail-templates';

/** Maximum number of send attempts per mail. A mail whose last attempt fails is marked `failed`. */
export const MAX_SEND_ATTEMPTS = 5;

const DEFAULT_POLL_INTERVAL_MS = 1_000;
const DEFAULT_BATCH_SIZE = 10;
const DEFAULT_RETRY_BASE_DELAY_MS = 60_000;
const DEFAULT_SEND_TIMEOUT_MS = 30_000;
// Extra time a claimed batch stays leased beyond the longest its sends can take.
const LEASE_MARGIN_MS = 60_000;
// Minimum time between two log lines about failed polls.
const POLL_ERROR_LOG_INTERVAL_MS = 60_000;
// Maximum length of the error text stored in mail_outbox.last_error.
const MAX_ERROR_LENGTH = 1_000;
const INTERRUPTED_ATTEMPT_ERROR =
  `attempt ${MAX_SEND_ATTEMPTS} did not finish before its lease expired, ` +
  'because the sending process stopped or stalled';

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

interface ClaimedMail {
  id: string;
  kind: MailKind;
  to_address: string;
  subject: string;
  body_text: string;
  /** Number of this attempt, already counted by the claim. */
  attempts: number;
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
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly retryBaseDelayMs: number;
  private readonly sendTimeoutMs: number;
  private pollTimer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private pollAgain = false;
  private started = false;
  private stopped = false;
  private sent = 0;
  private kept = 0;
  private failedPolls = 0;
  private lastPollErrorLoggedAt = 0;

  constructor(private readonly options: MailDispatcherOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
    this.sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
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
    return this.sent;
  }

  /** Mails this dispatcher has marked `kept` since it was created. */
  get keptCount(): number {
    return this.kept;
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
   * Stops polling, waits for the send in progress, returns the batch's unsent
   * mails to the outbox for other dispatchers, and closes the SMTP connection.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pollTimer);
    await this.polling;
    this.transport?.close();
    if (this.started)
      this.options.logger.info({ sent: this.sent, kept: this.kept }, 'mail dispatcher stopped');
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
      const count = this.transport ? await this.sendBatch(this.transport) : await this.keepBatch();
      if (count < this.batchSize) return;
    }
  }

  /** Sends one claimed batch and returns the number of rows claimed. */
  private async sendBatch(transport: Transporter): Promise<number> {
    const batch = await this.claimDueMails();
    for (const [index, mail] of batch.entries()) {
      if (this.stopped) {
        await this.release(batch.slice(index));
        break;
      }
      await this.send(transport, mail);
    }
    return batch.length;
  }

  /**
   * Leases up to one batch of due rows to this dispatcher and counts their
   * attempt. Rows whose last allowed attempt never finished are marked
   * `failed` instead.
   */
  private async claimDueMails(): Promise<ClaimedMail[]> {
    const leaseMs = this.batchSize * this.sendTimeoutMs + LEASE_MARGIN_MS;
    const { claimed, abandoned } = await this.options
      .forkEntityManager()
      .transactional(async (em) => {
        const sql = sqlFor(em);
        const due = await this.lockDueRows(sql);
        const exhausted = due
          .filter((row) => row.attempts >= MAX_SEND_ATTEMPTS)
          .map((row) => row.id);
        const claimable = due
          .filter((row) => row.attempts < MAX_SEND_ATTEMPTS)
          .map((row) => row.id);

        let abandoned: Array<{ id: string; kind: MailKind; to_address: string; attempts: number }> =
          [];
        if (exhausted.length > 0) {
          abandoned = await sql.query(
            `UPDATE mail_outbox SET status = 'failed', last_error = ?
            WHERE id = ANY(?::bigint[])
            RETURNING id, kind, to_address, attempts`,
            [INTERRUPTED_ATTEMPT_ERROR, arrayLiteral(exhausted)],
          );
        }

        let claimed: ClaimedMail[] = [];
        if (claimable.length > 0) {
          claimed = await sql.query<ClaimedMail>(
            `UPDATE mail_outbox
              SET attempts = attempts + 1,
                  next_attempt_at = now() + ?::double precision * interval '1 millisecond'
            WHERE id = ANY(?::bigint[])
            RETURNING id, kind, to_address, subject, body_text, attempts`,
            [leaseMs, arrayLiteral(claimable)],
          );
        }
        return { claimed, abandoned };
      });

    for (const row of abandoned) {
      this.options.logger.error(
        {
          mailId: row.id,
          kind: row.kind,
          toDomain: domainOf(row.to_address),
          attempts: row.attempts,
        },
        'mail marked failed because its last attempt was interrupted',
      );
    }
    return claimed.sort(byId);
  }

  private async send(transport: Transporter, mail: ClaimedMail): Promise<void> {
    try {
      await transport.sendMail({
        to: mail.to_address,
        subject: mail.subject,
        text: mail.body_text,
        signal: AbortSignal.timeout(this.sendTimeoutMs),
      });
    } catch (error) {
      await this.recordFailure(mail, error);
      return;
    }
    this.sent++;
    try {
      await sqlFor(this.options.forkEntityManager()).query(
        // The body goes once the SMTP server has it: it may hold a single-use
        // token, which the table should not keep. Kept mails (no SMTP) keep
        // their body, because developers read them there.
        `UPDATE mail_outbox SET status = 'sent', sent_at = now(), body_text = '[removed after sending]'
          WHERE id = ? AND status = 'pending'`,
        [mail.id],
      );
    } catch (error) {
      this.options.logger.error(
        { mailId: mail.id, kind: mail.kind, err: error },
        'mail was sent but marking it sent failed; it will be sent again when its lease expires',
      );
      throw error;
    }
    this.options.logger.debug(
      {
        mailId: mail.id,
        kind: mail.kind,
        toDomain: domainOf(mail.to_address),
        attempt: mail.attempts,
      },
      'mail sent',
    );
  }

  /**
   * Stores the error and schedules the next attempt with exponential backoff,
   * or marks the mail `failed` after its last attempt. The update applies only
   * while the row is still this dispatcher's claim.
   */
  private async recordFailure(mail: ClaimedMail, error: unknown): Promise<void> {
    const details = describeSendError(error);
    const final = mail.attempts >= MAX_SEND_ATTEMPTS;
    const retryInMs = this.retryBaseDelayMs * 2 ** (mail.attempts - 1);
    await sqlFor(this.options.forkEntityManager()).query(
      `UPDATE mail_outbox
          SET last_error = ?,
              status = CASE WHEN ?::boolean THEN 'failed' ELSE 'pending' END,
              next_attempt_at = CASE WHEN ?::boolean THEN next_attempt_at
                                     ELSE now() + ?::double precision * interval '1 millisecond' END
        WHERE id = ? AND status = 'pending' AND attempts = ?`,
      [storedErrorText(error), final, final, retryInMs, mail.id, mail.attempts],
    );
    const context = {
      mailId: mail.id,
      kind: mail.kind,
      toDomain: domainOf(mail.to_address),
      attempt: mail.attempts,
      err: details,
    };
    if (final) {
      this.options.logger.error(
        context,
        `sending mail failed after ${MAX_SEND_ATTEMPTS} attempts; marked failed`,
      );
    } else {
      this.options.logger.warn({ ...context, retryInMs }, 'sending mail failed; retrying later');
    }
  }

  /** Returns claimed but unsent mails to the outbox at once, without counting their attempt. */
  private async release(mails: ClaimedMail[]): Promise<void> {
    await sqlFor(this.options.forkEntityManager()).query(
      `UPDATE mail_outbox SET attempts = attempts - 1, next_attempt_at = now()
        WHERE id = ANY(?::bigint[]) AND status = 'pending'`,
      [arrayLiteral(mails.map((mail) => mail.id))],
    );
  }

  /** Marks one batch of due rows `kept` and logs each; returns the number of rows marked. */
  private async keepBatch(): Promise<number> {
    const rows = await this.options.forkEntityManager().transactional(async (em) => {
      const sql = sqlFor(em);
      const due = await this.lockDueRows(sql);
      if (due.length === 0) return [];
      return sql.query<{ id: string; kind: MailKind; to_address: string; subject: string }>(
        `UPDATE mail_outbox SET status = 'kept'
          WHERE id = ANY(?::bigint[])
          RETURNING id, kind, to_address, subject`,
        [arrayLiteral(due.map((row) => row.id))],
      );
    });
    for (const row of rows.sort(byId)) {
      this.kept++;
      this.options.logger.info(
        {
          mailId: row.id,
          kind: row.kind,
          subject: row.subject,
          toDomain: domainOf(row.to_address),
        },
        'mail kept in the outbox, not sent, because SMTP_URL is unset',
      );
    }
    return rows.length;
  }

  /** Locks up to one batch of due rows in the caller's transaction, skipping rows locked by another dispatcher. */
  private lockDueRows(sql: Sql): Promise<Array<{ id: string; attempts: number }>> {
    return sql.query<{ id: string; attempts: number }>(
      `SELECT id, attempts FROM mail_outbox
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT ?
        FOR UPDATE SKIP LOCKED`,
      [this.batchSize],
    );
  }
}

function byId(a: { id: string }, b: { id: string }): number {
  return Number(BigInt(a.id) - BigInt(b.id));
}

/** Returns the domain of an address, which is all of it that the logs may show. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

// Matches the local part of an address and its @, for masking addresses in
// SMTP replies such as "550 5.1.1 <alice@example.com>: mailbox unavailable".
const LOCAL_PART = /[^\s<>()[\]\\,;:"'@]+@/g;

function maskAddresses(text: string): string {
  return text.replace(LOCAL_PART, '[redacted]@');
}

/**
 * Returns the parts of a send error that are safe to log. nodemailer's errors
 * carry the recipients and the server's reply, which can contain the full
 * address, so only these fields are kept, with addresses masked.
 */
function describeSendError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: maskAddresses(String(error)) };
  const smtp = error as Error & { code?: string; responseCode?: number; command?: string };
  return {
    type: smtp.name,
    message: maskAddresses(smtp.message),
    code: smtp.code,
    responseCode: smtp.responseCode,
    command: smtp.command === undefined ? undefined : maskAddresses(smtp.command),
  };
}

/** Returns the error text for mail_outbox.last_error, unmasked, because that row contains the address anyway. */
function storedErrorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.slice(0, MAX_ERROR_LENGTH);
}

/** Returns host and port of an SMTP URL, without its credentials. */
function smtpEndpoint(smtpUrl: string): string {
  const url = new URL(smtpUrl);
  return `${url.protocol}//${url.host}`;
}
