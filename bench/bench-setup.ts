import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import { loadConfig } from '../src/config/config';
import { ormOptions } from '../src/database/orm-options';
import { sqlFor } from '../src/database/sql';
import { createLogger } from '../src/logging/logger';
import { PasswordHasher } from '../src/members/password-hasher';
import { createServices, type Services } from '../src/services';

/** Runs `action` with a connection to the server's maintenance database. */
export async function withAdmin<T>(
  serverUrl: string,
  action: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await action(client);
  } finally {
    await client.end();
  }
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates an empty database, dropping one of the same name left by an earlier run. */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  await withAdmin(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  });
  return databaseUrl(serverUrl, name);
}

export interface BenchWorld {
  merchants: Array<{ id: string; key: string; settlementAccountId: string }>;
  /** Funded wallets: prepaid IDs and the session tokens of their owners. */
  wallets: Array<{
    prepaidId: string;
    sessionToken: string;
    memberId: string;
    ledgerAccountId: string;
  }>;
}

/** The migrated database with the services, for building data quickly. */
export async function openServices(
  url: string,
): Promise<{ orm: MikroORM; services: Services; close(): Promise<void> }> {
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'warn' });
  const orm = await MikroORM.init(ormOptions({ databaseUrl: url, poolMax: 4 }));
  await orm.getMigrator().up();
  const services = createServices({ config, logger: createLogger('warn'), orm });
  return {
    orm,
    services,
    async close() {
      await services.limits.close();
      await orm.close();
    },
  };
}

/**
 * Builds merchants with keys, and verified members whose wallets hold
 * `walletBalance` points, with a session each. Members are written with SQL
 * and one shared password hash, because thousands of argon2 hashes would
 * take minutes; wallets and their funding go through the services.
 */
export async function buildWorld(
  url: string,
  size: { merchants: number; wallets: number; walletBalance: number },
): Promise<BenchWorld> {
  const { orm, services, close } = await openServices(url);
  try {
    const em = () => orm.em.fork();
    const sql = () => sqlFor(orm.em.fork());
    const merchants = [];
    for (let index = 0; index < size.merchants; index++) {
      const merchant = await services.merchants.create(em(), `Bench Shop ${index}`);
      const key = await services.apiKeys.create(sql(), merchant.id, 'bench');
      merchants.push({
        id: merchant.id,
        key: key.key,
        settlementAccountId: merchant.settlementAccountId,
      });
    }

    const passwordHash = await new PasswordHasher().hash('bench passphrase for everyone');
    const adjustment = await services.ledger.operatorAccountId(sql(), 'adjustment');
    const wallets = [];
    for (let index = 0; index < size.wallets; index++) {
      const wallet = await em().transactional(async (tx) => {
        const txSql = sqlFor(tx);
        const member = await txSql.one<{ id: string }>(
          `INSERT INTO member (email, username, password_hash, email_verified_at)
           VALUES (?, ?, ?, now()) RETURNING id`,
          [`bench${index}@bench.test`, `bench${index}`, passwordHash],
        );
        await services.wallets.createForMember(txSql, member!.id);
        await services.wallets.activate(txSql, member!.id);
        const view = await services.wallets.findByMember(txSql, member!.id);
        const session = await services.sessions.create(txSql, member!.id, {
          ip: '127.0.0.1',
          userAgent: 'bench',
        });
        await services.ledger.postWithin(txSql, {
          kind: 'adjustment',
          debitAccountId: adjustment,
          creditAccountId: view!.ledgerAccountId,
          amount: size.walletBalance,
          description: 'bench funding',
        });
        return {
          prepaidId: await services.wallets.revealPrepaidId(txSql, member!.id),
          sessionToken: session.token,
          memberId: member!.id,
          ledgerAccountId: view!.ledgerAccountId,
        };
      });
      wallets.push(wallet);
    }
    return { merchants, wallets };
  } finally {
    await close();
  }
}
