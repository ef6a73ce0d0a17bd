import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** A mail as the sink received it: envelope recipients and the parsed message. */
export interface ReceivedMail {
  from: string;
  /** RCPT TO addresses of the SMTP envelope. */
  to: string[];
  subject: string;
  text: string;
}

interface Waiter {
  predicate: (mail: ReceivedMail) => boolean;
  resolve: (mail: ReceivedMail) => void;
}

/**
 * A real SMTP server on 127.0.0.1 and a free port, without TLS or
 * authentication, that keeps every mail it accepts. It can reject messages
 * and delay its replies to simulate a failing or slow mail server.
 */
export class SmtpSink {
  readonly mails: ReceivedMail[] = [];
  /** Delay before the reply to each message's DATA, in milliseconds. */
  replyDelayMs = 0;
  private failures: Array<{ code: number; message: string }> = [];
  private waiters: Waiter[] = [];
  private rejected = 0;

  private constructor(
    private readonly server: SMTPServer,
    readonly url: string,
  ) {}

  static async start(): Promise<SmtpSink> {
    // Assigned below, once the server listens; onData runs only after that.
    // eslint-disable-next-line prefer-const
    let sink: SmtpSink | undefined;
    const server = new SMTPServer({
      secure: false,
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      disableReverseLookup: true,
      logger: false,
      closeTimeout: 1_000,
      onData: (stream, session, callback) => {
        sink!.receive(stream, session).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.server.address() as AddressInfo;
    sink = new SmtpSink(server, `smtp://127.0.0.1:${port}`);
    return sink;
  }

  /** Number of messages rejected by failNext so far. */
  get rejectedCount(): number {
    return this.rejected;
  }

  /**
   * Rejects the next `count` messages after their DATA with `code`: a 4xx
   * reply is a temporary failure, a 5xx reply a permanent one.
   */
  failNext(
    count: number,
    code = 451,
    message = 'Requested action aborted: local error in processing',
  ): void {
    for (let i = 0; i < count; i++) this.failures.push({ code, message });
  }

  /** Returns the mails whose envelope includes the address. */
  mailsTo(address: string): ReceivedMail[] {
    return this.mails.filter((mail) => mail.to.includes(address.toLowerCase()));
  }

  /** Resolves with the first mail, already received or still to come, that matches the predicate. */
  waitForMail(
    predicate: (mail: ReceivedMail) => boolean,
    timeoutMs = 5_000,
  ): Promise<ReceivedMail> {
    const found = this.mails.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (mail) => {
          clearTimeout(timer);
          resolve(mail);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for a mail; ${this.mails.length} received`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Stops listening and closes open connections, forcibly after one second. */
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<void> {
    const failure = this.failures.shift();
    if (failure) {
      // The client waits for the reply only after it has sent the whole message.
      stream.resume();
      await new Promise((resolve) => stream.once('end', resolve));
      await this.delay();
      this.rejected++;
      throw Object.assign(new Error(failure.message), { responseCode: failure.code });
    }
    const parsed = await simpleParser(stream);
    await this.delay();
    const mail: ReceivedMail = {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      to: session.envelope.rcptTo.map((recipient) => recipient.address.toLowerCase()),
      subject: parsed.subject ?? '',
      text: parsed.text ?? '',
    };
    this.mails.push(mail);
    for (const waiter of this.waiters.filter((candidate) => candidate.predicate(mail))) {
      this.waiters = this.waiters.filter((other) => other !== waiter);
      waiter.resolve(mail);
    }
  }

  private delay(): Promise<void> {
    if (this.replyDelayMs <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, this.replyDelayMs));
  }
}
