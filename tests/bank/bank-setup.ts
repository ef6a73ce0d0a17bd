import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../../src/config/config';
import { ormOptions } from '../../src/database/orm-options';
import { sqlFor } from '../../src/database/sql';
import { createLogger } from '../../src/logging/logger';
import { createServices } from '../../src/services';
import type { BankWorld } from './bank-workload';

export interface SetupSize {
  merchants: number;
  cards: number;
  cardValue: number;
  members: number;
}

/**
 * Creates the world of a bank run with the services themselves, in this
 * process, before any server starts: merchants with keys and a credit limit,
 * cards, and verified members with signed-in sessions and funded wallets.
 */
export async function createWorld(
  databaseUrl: string,
  environment: Record<string, string>,
  size: SetupSize,
): Promise<BankWorld> {
  const config = loadConfig({ ...environment, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' });
  const orm = await MikroORM.init(ormOptions({ databaseUrl, poolMax: 4 }));
  await orm.getMigrator().up();
  const services = createServices({ config, logger: createLogger('warn'), orm });
  try {
    const em = () => orm.em.fork();
    const sql = () => sqlFor(orm.em.fork());

    const merchants = [];
    for (let index = 0; index < size.merchants; index++) {
      const merchant = await services.merchants.create(em(), `Bank Shop ${index}`);
      // Credits draw on a generous credit limit, so that most of them succeed.
      await sql().query('UPDATE merchant SET credit_limit = 1000000000 WHERE id = ?', [
        merchant.id,
      ]);
      const key = await services.apiKeys.create(sql(), merchant.id, 'bank test');
      merchants.push({ id: merchant.id, key: key.key });
    }

    const batch = await services.cards.issueBatch(em(), size.cards, size.cardValue);
    const cards = batch.cards.map((card) => card.digits);

    const members = [];
    for (let index = 0; index < size.members; index++) {
      const username = `banker${index}`;
      const email = `${username}@bank.test`;
      const password = `bank test passphrase ${index}`;
      const outcome = await services.registration.register(
        em(),
        { email, username, password },
        '127.0.0.1',
      );
      if (!outcome.ok) throw new Error(`registration failed: ${outcome.message}`);
      const mail = await sql().one<{ body_text: string }>(
        `SELECT body_text FROM mail_outbox WHERE to_address = ? AND kind = 'email_verification'`,
        [email],
      );
      const token = /(ev_[A-Za-z0-9_-]{43})/.exec(mail!.body_text)![1]!;
      if (!(await services.registration.verifyEmail(em(), token, '127.0.0.1')))
        throw new Error('verification failed');
      const login = await services.login.login(em(), username, password, {
        ip: '127.0.0.1',
        userAgent: 'bank',
      });
      if (login.kind !== 'session') throw new Error('sign-in failed');
      const wallet = await services.wallets.revealPrepaidId(sql(), login.memberId);
      members.push({ sessionToken: login.token, wallet });
    }
    return { merchants, cards, members };
  } finally {
    await services.limits.close();
    await orm.close();
  }
}
