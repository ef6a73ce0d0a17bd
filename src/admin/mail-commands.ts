import { sqlFor } from '../database/sql';
import { UsageError, type AdminCommand, type Values } from './admin-command';

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1_000;

function limitOption(values: Values): number {
  const text = values.limit;
  if (text === undefined) return DEFAULT_LIMIT;
  const value = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || value < 1 || value > MAX_LIMIT) {
    throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIMIT}, got "${text}"`);
  }
  return value;
}

export const MAIL_COMMANDS: Record<string, AdminCommand> = {
  'mail:outbox': {
    summary:
      'Print the newest mails of the outbox with their bodies, for reading tokens when SMTP_URL is unset.',
    usage: `[--to <address>] [--limit <n, default ${DEFAULT_LIMIT}>]`,
    options: { to: { type: 'string' }, limit: { type: 'string' } },
    async run({ orm, services }, values, print) {
      const to = typeof values.to === 'string' && values.to.length > 0 ? values.to : undefined;
      const mails = await services.mail.listRecent(sqlFor(orm.em.fork()), {
        to,
        limit: limitOption(values),
      });
      if (mails.length === 0) {
        print(to ? `no mails to ${to} in the outbox` : 'the outbox is empty');
        return;
      }
      for (const mail of mails) {
        print(
          `#${mail.id}  ${mail.createdAt.toISOString()}  ${mail.status}  ${mail.kind}  to ${mail.to}`,
        );
        if (mail.lastError)
          print(`last error (after ${mail.attempts} attempts): ${mail.lastError}`);
        print(`Subject: ${mail.subject}`);
        print('');
        print(mail.text.trimEnd());
        print('');
      }
    },
  },
};
