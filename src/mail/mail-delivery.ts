// The outbox work of MailDispatcher: claiming due rows under a lease, sending
// each over SMTP or marking it kept, and storing each result in mail_outbox.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Transporter } from 'nodemailer';
import { arrayLiteral, sqlFor, type Sql } from '../database/sql';
import type { Logger } from '../logging/logger';
import type { MailKind } from './mail-templates';
import { describeSendError, domainOf, storedErrorText } from './mail-redaction';

/** Maximum number of send attempts per mail. A mail whose last attempt fails is marked `failed`. */
export const MAX_SEND_ATTEMPTS = 5;

// Extra time a claimed batch stays leased beyond the longest its sends can take.
const LEASE_MARGIN_MS = 60_000;
const INTERRUPTED_ATTEMPT_ERROR =
  `attempt ${MAX_SEND_ATTEMPTS} did not finish before its lease expired, ` +
  'because the sending process stopped or stalled';

/** The settings that MailDispatcher resolves from its options, defaults applied. */
export interface MailDeliveryOptions {
  forkEntityManager: () => EntityManager;
  logger: Logger;
  /** Maximum number of mails claimed per database transaction. */
  batchSize: number;
  /** Delay before the second attempt, in milliseconds. It doubles for each later attempt. */
  retryBaseDelayMs: number;
  /** Time after which a single send is aborted and counted as failed, in milliseconds. */
  sendTimeoutMs: number;
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

/** Runs the mail_outbox statements of one MailDispatcher and counts the mails it sent and kept. */
export class MailDelivery {
  private sent = 0;
  private kept = 0;

  constructor(private readonly options: MailDeliveryOptions) {}

  /** Mails handed to the SMTP server since this object was created. */
  get sentCount(): number {
    return this.sent;
  }

  /** Mails marked `kept` since this object was created. */
  get keptCount(): number {
    return this.kept;
  }

  /**
   * Leases up to one batch of due rows to this dispatcher and counts their
   * attempt. Rows whose last allowed attempt never finished are marked
   * `failed` instead.
   */
  async claimDueMails(): Promise<ClaimedMail[]> {
    const leaseMs = this.options.batchSize * this.options.sendTimeoutMs + LEASE_MARGIN_MS;
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

  async send(transport: Transporter, mail: ClaimedMail): Promise<void> {
    try {
      await transport.sendMail({
        to: mail.to_address,
        subject: mail.subject,
        text: mail.body_text,
        signal: AbortSignal.timeout(this.options.sendTimeoutMs),
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
    const retryInMs = this.options.retryBaseDelayMs * 2 ** (mail.attempts - 1);
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
  async release(mails: ClaimedMail[]): Promise<void> {
    await sqlFor(this.options.forkEntityManager()).query(
      `UPDATE mail_outbox SET attempts = attempts - 1, next_attempt_at = now()
        WHERE id = ANY(?::bigint[]) AND status = 'pending'`,
      [arrayLiteral(mails.map((mail) => mail.id))],
    );
  }

  /** Marks one batch of due rows `kept` and logs each; returns the number of rows marked. */
  async keepBatch(): Promise<number> {
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
      [this.options.batchSize],
    );
  }
}

function byId(a: { id: string }, b: { id: string }): number {
  return Number(BigInt(a.id) - BigInt(b.id));
}
