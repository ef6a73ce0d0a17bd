import { sqlFor } from '../database/sql';
import { API_KEY_SCOPES, type ApiKeyScope } from '../merchants/api-key.entity';
import { groupDigits } from '../prepaid/prepaid-id';
import { UsageError, type AdminCommand, type Values } from './admin-command';
import { MAIL_COMMANDS } from './mail-commands';
import { OPERATOR_COMMANDS } from './operator-commands';

export { UsageError, type AdminCommand, type Values };

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.length === 0)
    throw new UsageError(`--${name} is required`);
  return value;
}

function positiveInteger(values: Values, name: string): number {
  const text = required(values, name);
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`--${name} must be a positive whole number, got "${text}"`);
  }
  return value;
}

export const COMMANDS: Record<string, AdminCommand> = {
  'merchant:create': {
    summary: 'Create a merchant with its settlement account.',
    usage: '--name <name>',
    options: { name: { type: 'string' } },
    async run({ orm, services }, values, print) {
      const merchant = await services.merchants.create(orm.em.fork(), required(values, 'name'));
      print(`merchant ${merchant.id} "${merchant.name}" created`);
    },
  },
  'merchant:list': {
    summary: 'List merchants.',
    usage: '',
    options: {},
    async run({ orm, services }, _values, print) {
      for (const merchant of await services.merchants.list(sqlFor(orm.em.fork()))) {
        print(`${merchant.id}  ${merchant.name}  credit limit ${merchant.creditLimit}`);
      }
    },
  },
  'key:create': {
    summary: 'Create an API key for a merchant; the key is printed once and cannot be shown again.',
    usage: `--merchant <id> [--label <text>] [--scopes ${API_KEY_SCOPES.join(',')}]`,
    options: {
      merchant: { type: 'string' },
      label: { type: 'string' },
      scopes: { type: 'string' },
    },
    async run({ orm, services }, values, print) {
      const sql = sqlFor(orm.em.fork());
      const merchantId = required(values, 'merchant');
      if (
        !/^[0-9a-f-]{36}$/.test(merchantId) ||
        !(await services.merchants.find(sql, merchantId))
      ) {
        throw new Error(`merchant ${merchantId} not found; list merchants with merchant:list`);
      }
      const scopes =
        typeof values.scopes === 'string'
          ? (values.scopes.split(',') as ApiKeyScope[])
          : [...API_KEY_SCOPES];
      const key = await services.apiKeys.create(
        sql,
        merchantId,
        String(values.label ?? ''),
        scopes,
      );
      print(
        `API key ${key.prefix} created with scopes ${scopes.join(',')}. Store it now; it is not shown again:`,
      );
      print(key.key);
    },
  },
  'key:list': {
    summary: "List a merchant's API keys by prefix.",
    usage: '--merchant <id>',
    options: { merchant: { type: 'string' } },
    async run({ orm, services }, values, print) {
      for (const key of await services.apiKeys.list(
        sqlFor(orm.em.fork()),
        required(values, 'merchant'),
      )) {
        const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
        print(
          `${key.prefix}  ${state}  scopes ${key.scopes.join(',')}  created ${key.createdAt.toISOString()}  ${key.label}`,
        );
      }
    },
  },
  'key:revoke': {
    summary: 'Revoke an API key by its prefix; requests with it fail from then on.',
    usage: '--prefix <prefix>',
    options: { prefix: { type: 'string' } },
    async run({ orm, services }, values, print) {
      const prefix = required(values, 'prefix');
      if (!(await services.apiKeys.revoke(sqlFor(orm.em.fork()), prefix))) {
        throw new Error(`no active API key has the prefix ${prefix}`);
      }
      print(`API key ${prefix} revoked`);
    },
  },
  'cards:issue': {
    summary: 'Issue prepaid cards of a face value; each ID is printed once.',
    usage: '--count <n> --value <points> [--note <text>]',
    options: { count: { type: 'string' }, value: { type: 'string' }, note: { type: 'string' } },
    async run({ orm, services }, values, print) {
      const batch = await services.cards.issueBatch(
        orm.em.fork(),
        positiveInteger(values, 'count'),
        positiveInteger(values, 'value'),
        String(values.note ?? ''),
      );
      const cards = batch.cards.length === 1 ? '1 card' : `${batch.cards.length} cards`;
      print(`batch ${batch.batchId}: ${cards} of ${batch.faceValue} points. Prepaid IDs:`);
      for (const card of batch.cards) print(groupDigits(card.digits));
    },
  },
  'ledger:check': {
    summary: 'Check that the ledger balances; exits with 1 when it does not.',
    usage: '',
    options: {},
    async run({ orm, services }, _values, print) {
      const report = await services.ledgerCheck.check(orm.em.fork());
      print(JSON.stringify(report, null, 2));
      if (!report.balanced) throw new Error('the ledger does not balance');
    },
  },
  ...MAIL_COMMANDS,
  ...OPERATOR_COMMANDS,
};
