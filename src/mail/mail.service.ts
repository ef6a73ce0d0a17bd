import type { Sql } from '../database/sql';
import { MAIL_KINDS, type MailKind, type OutgoingMail } from './mail-templates';

export type MailStatus = 'pending' | 'sent' | 'failed' | 'kept';

/** One row of the mail outbox, body included. */
export interface OutboxMail {
  id: string;
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
  status: MailStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

// One address with no display name: nodemailer would read a comma, a
// semicolon or angle brackets in `to` as more recipients or a name, and a
// mistake upstream would then send a token to a second address.
const SINGLE_ADDRESS = /^[^\s@,;<>()[\]\\"]+@[^\s@,;<>()[\]\\"]+\.[^\s@,;<>()[\]\\".]+$/;
const LINE_BREAK = /[\r\n]/;

/** Throws a RangeError unless the mail has a known kind, a single recipient address and a one-line subject. */
export function validateMail(mail: OutgoingMail): void {
  if (!MAIL_KINDS.includes(mail.kind)) {
    throw new RangeError(
      `unknown mail kind "${mail.kind}"; expected one of ${MAIL_KINDS.join(', ')}`,
    );
  }
  if (!SINGLE_ADDRESS.test(mail.to)) {
    // The address itself stays out of the message, which may end up in a log.
    throw new RangeError(
      'invalid recipient address; expected one plain address such as name@example.com',
    );
  }
  if (mail.subject.trim().length === 0 || LINE_BREAK.test(mail.subject)) {
    throw new RangeError('invalid mail subject; expected one non-empty line');
  }
}

/**
 * Writes mails to the outbox table. A MailDispatcher in each server process
 * sends them later, so a mail leaves only after the database transaction that
 * wrote it has committed.
 */
export class MailService {
  /**
   * Inserts the mail into the outbox through `sql`, inside the caller's
   * database transaction when `sql` belongs to one, and returns its id. It
   * sends nothing: the dispatchers find the row within their poll interval, or
   * at once if the caller calls `MailDispatcher.wake()` after the commit.
   */
  async enqueue(sql: Sql, mail: OutgoingMail): Promise<string> {
    validateMail(mail);
    const row = await sql.one<{ id: string }>(
      `INSERT INTO mail_outbox (kind, to_address, subject, body_text) VALUES (?, ?, ?, ?) RETURNING id`,
      [mail.kind, mail.to, mail.subject, mail.text],
    );
    return row!.id;
  }

  /** Lists the newest mails first, optionally only those to one address (compared case-insensitively). */
  async listRecent(sql: Sql, options: { to?: string; limit: number }): Promise<OutboxMail[]> {
    const rows = await sql.query<{
      id: string;
      kind: MailKind;
      to_address: string;
      subject: string;
      body_text: string;
      status: MailStatus;
      attempts: number;
      last_error: string | null;
      created_at: string | Date;
      sent_at: string | Date | null;
    }>(
      `SELECT id, kind, to_address, subject, body_text, status, attempts, last_error, created_at, sent_at
         FROM mail_outbox
        WHERE ?::text IS NULL OR lower(to_address) = lower(?::text)
        ORDER BY id DESC
        LIMIT ?`,
      [options.to ?? null, options.to ?? null, options.limit],
    );
    return rows.map((row) => ({
      id: row.id,
      kind: row.kind,
      to: row.to_address,
      subject: row.subject,
      text: row.body_text,
      status: row.status,
      attempts: row.attempts,
      lastError: row.last_error,
      createdAt: new Date(row.created_at),
      sentAt: row.sent_at === null ? null : new Date(row.sent_at),
    }));
  }
}
