import { maskPrepaidId } from '../prepaid/prepaid-id';
import { UsageError, type AdminCommand, type Values } from './admin-command';
import type { AdminRuntime } from './admin-runtime';
import type { OperatorActor } from './operator-actor';
import { OperatorInputError } from './operator-input';
import type { PrepaidIdStatusOutcome, WalletStatusOutcome } from './operator-status-change';
import type { OperatorService } from './operator.service';

const CLI: OperatorActor = { via: 'cli' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// An RFC 3339 date and time. The offset is required so that the moment does
// not depend on the time zone of the machine that runs the CLI.
const DATE_TIME_WITH_OFFSET =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new UsageError(`--${name} is required`);
  }
  return value;
}

function wholeNumber(values: Values, name: string, minimum: number): number {
  const text = required(values, name);
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum) {
    const range = minimum === 0 ? '0 or more' : `at least ${minimum}`;
    throw new UsageError(`--${name} must be a whole number of points, ${range}, got "${text}"`);
  }
  return value;
}

function momentOption(values: Values, name: string): Date {
  const text = required(values, name);
  const moment = new Date(text);
  if (!DATE_TIME_WITH_OFFSET.test(text) || Number.isNaN(moment.getTime())) {
    throw new UsageError(
      `--${name} must be an ISO 8601 date and time with an offset, such as 2027-03-31T23:59:59+09:00, got "${text}"`,
    );
  }
  return moment;
}

/** Runs an operator service call and reports its input errors as usage errors. */
async function run<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    // Service messages start with the field name, as in "reason is required",
    // and the CLI puts the option name in its place.
    if (error instanceof OperatorInputError) {
      const message = error.message.startsWith(error.field)
        ? `--${optionOf(error.field)}${error.message.slice(error.field.length)}`
        : error.message;
      throw new UsageError(message);
    }
    throw error;
  }
}

const OPTION_NAMES: Record<string, string> = {
  prepaidId: 'id',
  creditLimit: 'limit',
};

function optionOf(field: string): string {
  return OPTION_NAMES[field] ?? field;
}

function operators(runtime: AdminRuntime): OperatorService {
  return runtime.services.operators;
}

/** Prints the outcome of a block or unblock, or throws when nothing could be done. */
function printPrepaidIdOutcome(
  outcome: PrepaidIdStatusOutcome,
  verb: 'blocked' | 'unblocked',
  print: (line: string) => void,
): void {
  if (!outcome.ok && outcome.code === 'NOT_FOUND') {
    throw new Error('prepaid ID not found; check the digits');
  }
  if (!outcome.ok) {
    const required = verb === 'blocked' ? 'an active' : 'a blocked';
    throw new Error(
      `the ${outcome.kind} prepaid ID is ${outcome.status}; only ${required} ID can be ${verb}`,
    );
  }
  const { kind, lastDigits, status } = outcome.prepaidId;
  const masked = maskPrepaidId(lastDigits);
  print(
    outcome.changed
      ? `${kind} prepaid ID ${masked} ${verb}`
      : `${kind} prepaid ID ${masked} is ${status} already; nothing changed`,
  );
}

function printWalletOutcome(
  outcome: WalletStatusOutcome,
  username: string,
  verb: 'frozen' | 'unfrozen',
  print: (line: string) => void,
): void {
  if (!outcome.ok) throw new Error(`no active member with a wallet has the username "${username}"`);
  print(
    outcome.changed
      ? `wallet of ${outcome.wallet.username} ${verb}`
      : `wallet of ${outcome.wallet.username} is ${outcome.wallet.status} already; nothing changed`,
  );
}

export const OPERATOR_COMMANDS: Record<string, AdminCommand> = {
  'operator:grant': {
    summary:
      'Give a member the operator role. Operator operations need two-factor authentication on.',
    usage: '--username <username>',
    options: { username: { type: 'string' } },
    async run(runtime, values, print) {
      const username = required(values, 'username');
      const outcome = await run(() =>
        operators(runtime).setRole(runtime.orm.em.fork(), username, 'operator'),
      );
      if (!outcome.ok) throw new Error(`no active member has the username "${username}"`);
      print(
        outcome.changed
          ? `${outcome.username} is now an operator`
          : `${outcome.username} is an operator already; nothing changed`,
      );
      print(
        outcome.twoFactorEnabled
          ? 'Two-factor authentication is on, so operator operations work at once.'
          : 'Two-factor authentication is off: operator operations are rejected until the member turns it on with enrollTotp and confirmTotp.',
      );
    },
  },
  'operator:revoke': {
    summary: 'Take the operator role back; it stops working at the next request.',
    usage: '--username <username>',
    options: { username: { type: 'string' } },
    async run(runtime, values, print) {
      const username = required(values, 'username');
      const outcome = await run(() =>
        operators(runtime).setRole(runtime.orm.em.fork(), username, 'member'),
      );
      if (!outcome.ok) throw new Error(`no active member has the username "${username}"`);
      print(
        outcome.changed
          ? `${outcome.username} is no longer an operator`
          : `${outcome.username} is not an operator; nothing changed`,
      );
    },
  },
  'prepaid:block': {
    summary: 'Block an active prepaid ID of any kind, so that it can no longer pay.',
    usage: '--id <16 digits> --reason <text>',
    options: { id: { type: 'string' }, reason: { type: 'string' } },
    async run(runtime, values, print) {
      const request = { prepaidId: required(values, 'id'), reason: required(values, 'reason') };
      const outcome = await run(() =>
        operators(runtime).blockPrepaidId(runtime.orm.em.fork(), CLI, request),
      );
      printPrepaidIdOutcome(outcome, 'blocked', print);
    },
  },
  'prepaid:unblock': {
    summary: 'Make a blocked prepaid ID active again.',
    usage: '--id <16 digits> --reason <text>',
    options: { id: { type: 'string' }, reason: { type: 'string' } },
    async run(runtime, values, print) {
      const request = { prepaidId: required(values, 'id'), reason: required(values, 'reason') };
      const outcome = await run(() =>
        operators(runtime).unblockPrepaidId(runtime.orm.em.fork(), CLI, request),
      );
      printPrepaidIdOutcome(outcome, 'unblocked', print);
    },
  },
  'wallet:freeze': {
    summary: "Freeze a member's wallet: it can neither pay nor receive points.",
    usage: '--username <username> --reason <text>',
    options: { username: { type: 'string' }, reason: { type: 'string' } },
    async run(runtime, values, print) {
      const request = {
        username: required(values, 'username'),
        reason: required(values, 'reason'),
      };
      const outcome = await run(() =>
        operators(runtime).freezeWallet(runtime.orm.em.fork(), CLI, request),
      );
      printWalletOutcome(outcome, request.username, 'frozen', print);
    },
  },
  'wallet:unfreeze': {
    summary: 'Make a frozen wallet active again.',
    usage: '--username <username> --reason <text>',
    options: { username: { type: 'string' }, reason: { type: 'string' } },
    async run(runtime, values, print) {
      const request = {
        username: required(values, 'username'),
        reason: required(values, 'reason'),
      };
      const outcome = await run(() =>
        operators(runtime).unfreezeWallet(runtime.orm.em.fork(), CLI, request),
      );
      printWalletOutcome(outcome, request.username, 'unfrozen', print);
    },
  },
  'merchant:credit-limit': {
    summary: "Set how far credits may take a merchant's settlement balance below zero.",
    usage: '--merchant <id> --limit <points, 0 or more>',
    options: { merchant: { type: 'string' }, limit: { type: 'string' } },
    async run(runtime, values, print) {
      const merchantId = required(values, 'merchant');
      if (!UUID.test(merchantId)) {
        throw new UsageError(
          `--merchant must be a merchant id as merchant:list prints it, got "${merchantId}"`,
        );
      }
      const creditLimit = wholeNumber(values, 'limit', 0);
      const outcome = await run(() =>
        operators(runtime).setMerchantCreditLimit(runtime.orm.em.fork(), CLI, {
          merchantId,
          creditLimit,
        }),
      );
      if (!outcome.ok) {
        throw new Error(`merchant ${merchantId} not found; list merchants with merchant:list`);
      }
      print(
        outcome.changed
          ? `credit limit of merchant ${merchantId} changed from ${outcome.previousCreditLimit} to ${outcome.creditLimit} points`
          : `credit limit of merchant ${merchantId} is ${outcome.creditLimit} points already; nothing changed`,
      );
    },
  },
  'ledger:adjust': {
    summary: 'Credit or debit a wallet or card with an audited adjustment.',
    usage: '--id <16 digits> --amount <points> --direction credit|debit --reason <text>',
    options: {
      id: { type: 'string' },
      amount: { type: 'string' },
      direction: { type: 'string' },
      reason: { type: 'string' },
    },
    async run(runtime, values, print) {
      const prepaidId = required(values, 'id');
      const amount = wholeNumber(values, 'amount', 1);
      const direction = required(values, 'direction');
      if (direction !== 'credit' && direction !== 'debit') {
        throw new UsageError(`--direction must be credit or debit, got "${direction}"`);
      }
      const reason = required(values, 'reason');
      const outcome = await run(() =>
        operators(runtime).adjustBalance(runtime.orm.em.fork(), CLI, {
          prepaidId,
          amount,
          direction,
          reason,
        }),
      );
      if (!outcome.ok) {
        switch (outcome.code) {
          case 'NOT_FOUND':
            throw new Error('prepaid ID not found; check the digits');
          case 'INSUFFICIENT_BALANCE':
            throw new Error(
              `the prepaid ID has ${outcome.available} points available, fewer than ${amount}; nothing was moved`,
            );
          case 'INVALID_PREPAID_ID':
            throw new Error(
              `the ${outcome.kind} prepaid ID is ${outcome.status}; only wallet and card IDs that are pending, active or blocked can be adjusted`,
            );
          default:
            throw new Error(`the adjustment failed with ${outcome.code}`);
        }
      }
      const { transaction } = outcome;
      const balanceAfter =
        direction === 'credit' ? transaction.creditBalanceAfter : transaction.debitBalanceAfter;
      print(
        `${direction === 'credit' ? 'credited' : 'debited'} ${amount} points; balance now ${balanceAfter} points (transaction ${transaction.id})`,
      );
    },
  },
  'report:unused-balance': {
    summary:
      'Print the unused points in wallets and prepaid cards at a moment, as for a base-date report.',
    usage: '--as-of <ISO 8601 date and time with offset, such as 2027-03-31T23:59:59.999+09:00>',
    options: { 'as-of': { type: 'string' } },
    async run(runtime, values, print) {
      const asOf = momentOption(values, 'as-of');
      const report = await operators(runtime).unusedBalanceReport(runtime.orm.em.fork(), asOf);
      print(`unused balance as of ${report.asOf.toISOString()}`);
      print(`wallets   ${report.walletTotal} points`);
      print(`cards     ${report.cardTotal} points`);
      print(`total     ${report.total} points`);
      print(`accounts with a balance  ${report.accountCount}`);
    },
  },
};
