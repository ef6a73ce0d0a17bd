import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import pino from 'pino';
import type { AdminRuntime } from '../../src/admin/admin-runtime';
import { UsageError } from '../../src/admin/commands';
import { MAIL_COMMANDS } from '../../src/admin/mail-commands';
import { ormOptions } from '../../src/database/orm-options';
import { sqlFor } from '../../src/database/sql';
import { MAX_SEND_ATTEMPTS } from '../../src/mail/mail-delivery';
import { MailDispatcher, type MailDispatcherOptions } from '../../src/mail/mail-dispatcher';
import {
  alreadyRegisteredMail,
  passwordChangedMail,
  passwordResetMail,
  usernameReminderMail,
  usernameTakenMail,
  verificationMail,
  withdrawalMail,
  type OutgoingMail,
} from '../../src/mail/mail-templates';
import { MailService } from '../../src/mail/mail.service';
import { SmtpSink } from '../support/smtp-sink';
import { createTestDatabase } from '../support/test-database';

const APP_URL = 'http://app.example.test';
const EXPIRES_AT = new Date('2026-12-05T10:30:00Z');

interface OutboxRow {
  status: string;
  attempts: number;
  last_error: string | null;
  sent_at: Date | null;
  due: boolean;
}

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: MikroORM;
let sink: SmtpSink;
const mails = new MailService();
const dispatchers: MailDispatcher[] = [];
const logs: Array<Record<string, any>> = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });

beforeAll(async () => {
  database = await createTestDatabase();
  orm = await MikroORM.init(ormOptions({ databaseUrl: database.url, poolMax: 4 }));
  sink = await SmtpSink.start();
});

afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.stop()));
  sink.replyDelayMs = 0;
});

afterAll(async () => {
  await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.stop()));
  await sink?.stop();
  await orm?.close(true);
  await database?.drop();
});

function startDispatcher(options: Partial<MailDispatcherOptions> = {}): MailDispatcher {
  const dispatcher = new MailDispatcher({
    forkEntityManager: () => orm.em.fork(),
    logger,
    smtpUrl: sink.url,
    mailFrom: 'Prepaid Wallet <no-reply@wallet.example.test>',
    pollIntervalMs: 50,
    retryBaseDelayMs: 50,
    ...options,
  });
  dispatchers.push(dispatcher);
  dispatcher.start();
  return dispatcher;
}

/** Enqueues the mail in a transaction of its own and returns its id after the commit. */
function enqueueCommitted(mail: OutgoingMail): Promise<string> {
  return orm.em.fork().transactional((em) => mails.enqueue(sqlFor(em), mail));
}

async function outboxRow(id: string): Promise<OutboxRow> {
  const row = await sqlFor(orm.em.fork()).one<OutboxRow>(
    `SELECT status, attempts, last_error, sent_at, next_attempt_at <= now() AS due FROM mail_outbox WHERE id = ?`,
    [id],
  );
  if (!row) throw new Error(`mail ${id} not found in the outbox`);
  return row;
}

async function waitFor(
  condition: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

async function waitForStatus(id: string, status: string, timeoutMs = 5_000): Promise<OutboxRow> {
  await waitFor(
    async () => (await outboxRow(id)).status === status,
    `mail ${id} to become ${status}`,
    timeoutMs,
  );
  return outboxRow(id);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function logsOf(mailId: string): Array<Record<string, any>> {
  return logs.filter((entry) => entry.mailId === mailId);
}

describe('mail templates', () => {
  test('verification mail has link, code and expiry', () => {
    const mail = verificationMail('alice@example.test', 'alice', 'tok/en+1', APP_URL, EXPIRES_AT);

    expect(mail).toMatchObject({ kind: 'email_verification', to: 'alice@example.test' });
    expect(mail.text).toContain('Hello alice,');
    expect(mail.text).toContain(`${APP_URL}/verify-email?token=tok%2Fen%2B1`);
    expect(mail.text).toContain('\ntok/en+1\n');
    expect(mail.text).toContain('2026-12-05 10:30 UTC');
    expect(mail.subject).not.toContain('tok/en+1');
  });

  test('password reset mail has link, code and expiry', () => {
    const mail = passwordResetMail('bob@example.test', 'reset-token', APP_URL, EXPIRES_AT);

    expect(mail.kind).toBe('password_reset');
    expect(mail.text).toContain(`${APP_URL}/reset-password?token=reset-token`);
    expect(mail.text).toContain('\nreset-token\n');
    expect(mail.text).toContain('work once and expire at 2026-12-05 10:30 UTC');
    expect(mail.subject).not.toContain('reset-token');
  });

  test('other kinds carry their facts', () => {
    expect(alreadyRegisteredMail('a@example.test').text).toContain('already has an account');
    expect(usernameTakenMail('a@example.test', 'taken_name').text).toContain('"taken_name"');
    expect(usernameReminderMail('a@example.test', 'carol').text).toContain('\ncarol\n');
    expect(passwordChangedMail('a@example.test').text).toContain('all other sessions');
    expect(withdrawalMail('a@example.test', 12_345).text).toContain('12,345 points was forfeited');
    expect(withdrawalMail('a@example.test', 1).text).toContain('1 point was forfeited');
  });
});

describe('MailService.enqueue', () => {
  test('rejects more than one recipient', async () => {
    const mail = usernameReminderMail('a@example.test, b@example.test', 'carol');

    await expect(mails.enqueue(sqlFor(orm.em.fork()), mail)).rejects.toThrow(
      /invalid recipient address/,
    );
    await expect(
      mails.enqueue(sqlFor(orm.em.fork()), usernameReminderMail('Carol <c@example.test>', 'carol')),
    ).rejects.toThrow(/invalid recipient address/);
  });

  test('rejects a subject with a line break', async () => {
    const mail = { ...passwordChangedMail('a@example.test'), subject: 'Hi\r\nBcc: x@example.test' };

    await expect(mails.enqueue(sqlFor(orm.em.fork()), mail)).rejects.toThrow(
      /invalid mail subject/,
    );
  });
});

describe('MailDispatcher', () => {
  test('delivers a committed mail once', async () => {
    const token = 'verify-token-8f3a';
    const id = await enqueueCommitted(
      verificationMail('alice@example.test', 'alice', token, APP_URL, EXPIRES_AT),
    );
    startDispatcher();

    const received = await sink.waitForMail((mail) => mail.to.includes('alice@example.test'));
    expect(received.to).toEqual(['alice@example.test']);
    expect(received.from).toBe('no-reply@wallet.example.test');
    expect(received.subject).toBe('Verify your email address for Prepaid Wallet');
    expect(received.text).toContain(`${APP_URL}/verify-email?token=${token}`);
    expect(received.text).toContain('2026-12-05 10:30 UTC');

    const row = await waitForStatus(id, 'sent');
    expect(row.attempts).toBe(1);
    expect(row.sent_at).not.toBeNull();
    await sleep(300);
    expect(sink.mailsTo('alice@example.test')).toHaveLength(1);
  });

  test('never sends a rolled-back mail', async () => {
    const dispatcher = startDispatcher();
    const rollback = orm.em.fork().transactional(async (em) => {
      await mails.enqueue(sqlFor(em), usernameReminderMail('rolled-back@example.test', 'dave'));
      throw new Error('roll back the registration');
    });
    await expect(rollback).rejects.toThrow('roll back the registration');

    // A mail committed after the rolled-back one shows that the dispatcher has polled since.
    const controlId = await enqueueCommitted(usernameReminderMail('control@example.test', 'erin'));
    dispatcher.wake();
    await sink.waitForMail((mail) => mail.to.includes('control@example.test'));
    await waitForStatus(controlId, 'sent');

    expect(sink.mailsTo('rolled-back@example.test')).toHaveLength(0);
    const stored = await sqlFor(orm.em.fork()).one<{ count: string }>(
      `SELECT count(*) AS count FROM mail_outbox WHERE to_address = 'rolled-back@example.test'`,
    );
    expect(Number(stored!.count)).toBe(0);
  });

  test('keeps mails without SMTP and logs no token', async () => {
    const token = 'dev-reset-token-77c1';
    const developmentDispatcher = startDispatcher({ smtpUrl: undefined });
    const id = await enqueueCommitted(
      passwordResetMail('dev@example.test', token, APP_URL, EXPIRES_AT),
    );
    developmentDispatcher.wake();

    const row = await waitForStatus(id, 'kept');
    expect(row.attempts).toBe(0);
    expect(row.sent_at).toBeNull();
    expect(developmentDispatcher.keptCount).toBe(1);
    expect(developmentDispatcher.sentCount).toBe(0);

    const [kept] = logsOf(id);
    expect(kept).toMatchObject({
      kind: 'password_reset',
      subject: 'Reset your Prepaid Wallet password',
      toDomain: 'example.test',
    });
    expect(JSON.stringify(logsOf(id))).not.toContain(token);
    expect(JSON.stringify(logsOf(id))).not.toContain('dev@');

    // A kept mail stays unsent when a dispatcher with SMTP runs later.
    await developmentDispatcher.stop();
    startDispatcher();
    await enqueueCommitted(usernameReminderMail('dev-control@example.test', 'frank'));
    await sink.waitForMail((mail) => mail.to.includes('dev-control@example.test'));
    expect(sink.mailsTo('dev@example.test')).toHaveLength(0);
    expect((await outboxRow(id)).status).toBe('kept');
  });

  test('retries a failed send, then delivers', async () => {
    const token = 'retry-token-51be';
    sink.failNext(2, 451);
    const rejectedBefore = sink.rejectedCount;
    const id = await enqueueCommitted(
      passwordResetMail('retry@example.test', token, APP_URL, EXPIRES_AT),
    );
    startDispatcher({ retryBaseDelayMs: 100 });

    await sink.waitForMail((mail) => mail.to.includes('retry@example.test'));
    const row = await waitForStatus(id, 'sent');
    expect(row.attempts).toBe(3);
    expect(row.last_error).toContain('451');
    expect(sink.rejectedCount - rejectedBefore).toBe(2);
    expect(sink.mailsTo('retry@example.test')).toHaveLength(1);

    const warnings = logsOf(id).filter(
      (entry) => entry.msg === 'sending mail failed; retrying later',
    );
    expect(warnings.map((entry) => entry.attempt)).toEqual([1, 2]);
    expect(warnings.map((entry) => entry.retryInMs)).toEqual([100, 200]);
    expect(warnings[0].err.responseCode).toBe(451);
    expect(warnings[0].toDomain).toBe('example.test');
    expect(JSON.stringify(logsOf(id))).not.toContain(token);
    expect(JSON.stringify(logsOf(id))).not.toContain('retry@');
  });

  test('marks a mail failed after the last attempt', async () => {
    sink.failNext(MAX_SEND_ATTEMPTS, 550, 'Mailbox unavailable: <gone@example.test>');
    const rejectedBefore = sink.rejectedCount;
    const id = await enqueueCommitted(passwordChangedMail('gone@example.test'));
    startDispatcher({ retryBaseDelayMs: 20 });

    const row = await waitForStatus(id, 'failed');
    expect(row.attempts).toBe(MAX_SEND_ATTEMPTS);
    expect(row.last_error).toContain('550');
    expect(sink.rejectedCount - rejectedBefore).toBe(MAX_SEND_ATTEMPTS);

    const final = logsOf(id).filter((entry) => entry.level === 50);
    expect(final).toHaveLength(1);
    expect(final[0].msg).toBe(
      `sending mail failed after ${MAX_SEND_ATTEMPTS} attempts; marked failed`,
    );
    // The server's reply contains the address, and the log keeps only its domain.
    expect(final[0].err.message).toContain('[redacted]@example.test');
    expect(JSON.stringify(logsOf(id))).not.toContain('gone@');

    await sleep(300);
    expect(sink.rejectedCount - rejectedBefore).toBe(MAX_SEND_ATTEMPTS);
    expect(sink.mailsTo('gone@example.test')).toHaveLength(0);
  });

  test('two dispatchers deliver 30 mails once each', async () => {
    const addresses = Array.from({ length: 30 }, (_, index) => `member${index}@many.example.test`);
    const ids = await orm.em.fork().transactional(async (em) => {
      const created: string[] = [];
      for (const [index, address] of addresses.entries()) {
        created.push(
          await mails.enqueue(sqlFor(em), usernameReminderMail(address, `member${index}`)),
        );
      }
      return created;
    });
    // Slow replies keep both dispatchers busy at the same time.
    sink.replyDelayMs = 10;
    const first = startDispatcher({ batchSize: 3 });
    const second = startDispatcher({ batchSize: 3 });

    await waitFor(
      async () => {
        const row = await sqlFor(orm.em.fork()).one<{ count: string }>(
          `SELECT count(*) AS count FROM mail_outbox WHERE id = ANY(?::bigint[]) AND status = 'sent'`,
          [`{${ids.join(',')}}`],
        );
        return Number(row!.count) === ids.length;
      },
      'all 30 mails to be sent',
      10_000,
    );
    await sleep(300);

    const received = sink.mails.filter((mail) => mail.to[0]!.endsWith('@many.example.test'));
    expect(received).toHaveLength(30);
    expect(new Set(received.map((mail) => mail.to[0])).size).toBe(30);
    expect(first.sentCount + second.sentCount).toBe(30);
    expect(first.sentCount).toBeGreaterThan(0);
    expect(second.sentCount).toBeGreaterThan(0);
    const attempts = await sqlFor(orm.em.fork()).query<{ attempts: number }>(
      `SELECT attempts FROM mail_outbox WHERE id = ANY(?::bigint[])`,
      [`{${ids.join(',')}}`],
    );
    expect(attempts.map((row) => row.attempts)).toEqual(Array(30).fill(1));
  });

  test('stop waits for the send in progress and releases the rest', async () => {
    const addresses = ['stop1@example.test', 'stop2@example.test', 'stop3@example.test'];
    const ids: string[] = [];
    for (const address of addresses)
      ids.push(await enqueueCommitted(usernameReminderMail(address, 'gina')));
    sink.replyDelayMs = 300;
    const stopping = startDispatcher();

    await waitFor(async () => (await outboxRow(ids[0]!)).attempts === 1, 'the batch to be claimed');
    await stopping.stop();

    expect((await outboxRow(ids[0]!)).status).toBe('sent');
    for (const id of ids.slice(1)) {
      const row = await outboxRow(id);
      expect(row.status).toBe('pending');
      expect(row.attempts).toBe(0);
      expect(row.due).toBe(true);
    }
    expect(sink.mailsTo('stop2@example.test')).toHaveLength(0);

    // Released mails go out at once, not when the lease would have expired.
    sink.replyDelayMs = 0;
    startDispatcher();
    await waitForStatus(ids[1]!, 'sent');
    await waitForStatus(ids[2]!, 'sent');
    for (const address of addresses) expect(sink.mailsTo(address)).toHaveLength(1);
  });
});

describe('MailDispatcher during a database outage', () => {
  test('logs repeated poll failures once', async () => {
    let databaseDown = true;
    const outageLogger = logger.child({ dispatcher: 'outage' });
    startDispatcher({
      logger: outageLogger,
      pollIntervalMs: 20,
      forkEntityManager: () => {
        if (databaseDown) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        return orm.em.fork();
      },
    });
    const outageLogs = () => logs.filter((entry) => entry.dispatcher === 'outage');

    await sleep(300);
    const failures = outageLogs().filter(
      (entry) => entry.msg === 'mail dispatch failed; retrying on the next poll',
    );
    expect(failures).toHaveLength(1);
    expect(failures[0].err.message).toContain('ECONNREFUSED');

    databaseDown = false;
    await waitFor(
      () => outageLogs().some((entry) => entry.msg === 'mail dispatch recovered'),
      'the recovery log',
    );
    const recovered = outageLogs().find((entry) => entry.msg === 'mail dispatch recovered')!;
    expect(recovered.failedPolls).toBeGreaterThan(5);
  });
});

describe('mail:outbox command', () => {
  const runtime = () => ({ orm, services: { mail: new MailService() } }) as unknown as AdminRuntime;

  test('prints the newest mails to an address with their bodies', async () => {
    const token = 'outbox-token-0d2e';
    await enqueueCommitted(usernameReminderMail('outbox@example.test', 'henry'));
    await enqueueCommitted(
      verificationMail('outbox@example.test', 'henry', token, APP_URL, EXPIRES_AT),
    );
    const lines: string[] = [];

    await MAIL_COMMANDS['mail:outbox']!.run(
      runtime(),
      { to: 'Outbox@Example.test', limit: '1' },
      (line) => lines.push(line),
    );

    expect(lines[0]).toMatch(
      /^#\d+ {2}\S+ {2}pending {2}email_verification {2}to outbox@example\.test$/,
    );
    expect(lines[1]).toBe('Subject: Verify your email address for Prepaid Wallet');
    expect(lines.join('\n')).toContain(`${APP_URL}/verify-email?token=${token}`);
    expect(lines.filter((line) => line.startsWith('#'))).toHaveLength(1);
  });

  test('rejects an invalid --limit', async () => {
    const run = MAIL_COMMANDS['mail:outbox']!.run(runtime(), { limit: '0' }, () => undefined);

    await expect(run).rejects.toThrow(UsageError);
  });
});
