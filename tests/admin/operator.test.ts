import { setTimeout as sleep } from 'node:timers/promises';
import { UNUSED_BALANCE_SQL } from '../../src/admin/unused-balance.service';
import { sqlFor } from '../../src/database/sql';
import { toGlobalId } from '../../src/graphql/relay';
import { currentTotpCode } from '../../src/members/totp';
import { generatePrepaidId } from '../../src/prepaid/prepaid-id';
import { CHARGE, chargeInput, newKey, useHarness, type TestMerchant } from '../support/harness';
import {
  enableTwoFactor,
  freshTotpCode,
  signUp,
  VIEWER,
  walletPrepaidId,
  type TestMember,
} from '../support/members';
import { ServerProcess } from '../support/server-process';

// Every adjustment and credit-limit change uses up a two-factor code, so the
// per-account code limit is raised. The per-IP limits are raised as the harness does.
const harness = useHarness(
  {
    RATE_LIMITS: JSON.stringify({
      loginPerIp: { points: 100_000, durationSeconds: 900 },
      registrationPerIp: { points: 100_000, durationSeconds: 3_600 },
      codePerAccount: { points: 100_000, durationSeconds: 900 },
    }),
  },
  { smtp: true },
);

const BLOCK = `
  mutation Block($input: PrepaidIdStatusChangeInput!) {
    blockPrepaidId(input: $input) {
      __typename
      ... on PrepaidIdStatusSuccess { prepaidId kind status changed }
      ... on PrepaidIdStatusError { kind status }
      ... on UserError { code message }
    }
  }`;

const UNBLOCK = `
  mutation Unblock($input: PrepaidIdStatusChangeInput!) {
    unblockPrepaidId(input: $input) {
      __typename
      ... on PrepaidIdStatusSuccess { prepaidId kind status changed }
      ... on PrepaidIdStatusError { kind status }
      ... on UserError { code message }
    }
  }`;

const FREEZE = `
  mutation Freeze($input: WalletStatusChangeInput!) {
    freezeWallet(input: $input) {
      __typename
      ... on WalletStatusSuccess { walletId username status changed }
      ... on UserError { code message }
    }
  }`;

const UNFREEZE = `
  mutation Unfreeze($input: WalletStatusChangeInput!) {
    unfreezeWallet(input: $input) {
      __typename
      ... on WalletStatusSuccess { walletId username status changed }
      ... on UserError { code message }
    }
  }`;

const ADJUST = `
  mutation Adjust($input: AdjustBalanceInput!) {
    adjustBalance(input: $input) {
      __typename
      ... on AdjustBalanceSuccess {
        balanceAfter
        replayed
        transaction { id kind status amount direction balanceAfter description }
      }
      ... on InsufficientBalanceError { available }
      ... on PrepaidIdStatusError { kind status }
      ... on UserError { code message }
    }
  }`;

const CREDIT_LIMIT = `
  mutation Limit($input: SetMerchantCreditLimitInput!) {
    setMerchantCreditLimit(input: $input) {
      __typename
      ... on SetMerchantCreditLimitSuccess { merchantId previousCreditLimit creditLimit changed }
      ... on UserError { code message }
    }
  }`;

const LEDGER_CHECK = `
  query { ledgerCheck { balanced totalPosted accountCount transactionCount checkedAt mismatches { ledgerAccountId } } }`;

const UNUSED_BALANCE = `
  query Unused($asOf: DateTimeISO!) {
    unusedBalanceReport(asOf: $asOf) { asOf walletTotal cardTotal total accountCount }
  }`;

const PREPAID_BALANCE = `query B($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;

interface Operator extends TestMember {
  id: string;
  secret: string;
  recoveryCodes: string[];
}

async function memberId(username: string): Promise<string> {
  const row = await harness()
    .sql()
    .one<{ id: string }>('SELECT id FROM member WHERE username = ?', [username]);
  return row!.id;
}

/** Signs up a member, turns on two-factor authentication and gives the operator role. */
async function newOperator(label = 'op'): Promise<Operator> {
  const member = await signUp(harness(), label);
  const { secret, recoveryCodes } = await enableTwoFactor(harness(), member.sessionToken);
  await harness()
    .sql()
    .query(`UPDATE member SET role = 'operator' WHERE username = ?`, [member.username]);
  return { ...member, id: await memberId(member.username), secret, recoveryCodes };
}

function code(operator: Operator): string {
  return freshTotpCode(harness(), operator.secret);
}

async function charge(merchant: TestMerchant, prepaidId: string, amount: number) {
  const { data, errors } = await harness().request(
    CHARGE,
    chargeInput(prepaidId, amount),
    merchant.key,
  );
  if (errors) throw new Error(JSON.stringify(errors));
  return data!.charge as { __typename: string; code?: string; balanceAfter?: number };
}

async function prepaidIdStatus(digits: string): Promise<string> {
  const found = await harness().services.prepaidIds.resolve(harness().sql(), digits);
  return found!.status;
}

async function auditRows(action: string) {
  return harness()
    .sql()
    .query<{
      actor_member_id: string | null;
      subject_member_id: string | null;
      ip: string;
      details: Record<string, unknown>;
    }>(
      `SELECT actor_member_id, subject_member_id, ip, details FROM audit_log
        WHERE action = ? ORDER BY id`,
      [action],
    );
}

async function transactionCount(): Promise<number> {
  return harness().count('SELECT count(*) FROM ledger_transaction');
}

/** Wallet and card totals straight from the ledger accounts' posted balances. */
async function storedValueTotals() {
  const row = await harness()
    .sql()
    .one<{ wallets: string; cards: string; accounts: string }>(
      `SELECT COALESCE(SUM(balance_posted) FILTER (WHERE kind = 'wallet'), 0) AS wallets,
            COALESCE(SUM(balance_posted) FILTER (WHERE kind = 'card'), 0) AS cards,
            count(*) FILTER (WHERE balance_posted > 0) AS accounts
       FROM ledger_account WHERE kind IN ('wallet', 'card')`,
    );
  const walletTotal = Number(row!.wallets);
  const cardTotal = Number(row!.cards);
  return {
    walletTotal,
    cardTotal,
    total: walletTotal + cardTotal,
    accountCount: Number(row!.accounts),
  };
}

/** Returns the database server's current time, which stamps every ledger transaction. */
async function databaseNow(): Promise<Date> {
  const row = await harness()
    .sql()
    .one<{ ms: string }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000) AS ms`);
  return new Date(Number(row!.ms));
}

/** Formats a moment in Japan Standard Time, as a base date would be written. */
function inTokyo(moment: Date): string {
  const shifted = new Date(moment.getTime() + 9 * 3_600_000).toISOString();
  return `${shifted.slice(0, -1)}+09:00`;
}

async function admin(
  args: string[],
  environment: Record<string, string> = {},
): Promise<{ code: number | null; lines: string[] }> {
  const cli = ServerProcess.start(
    'dist/src/admin/cli.js',
    { DATABASE_URL: harness().config.databaseUrl, ...environment },
    args,
  );
  const exitCode = await cli.wait(30_000);
  return { code: exitCode, lines: cli.lines };
}

describe('operator access', () => {
  let card: string;
  let merchant: TestMerchant;
  let member: TestMember;
  let operatorWithoutTwoFactor: TestMember;

  beforeAll(async () => {
    [card] = await harness().issueCards(1, 1_000);
    merchant = await harness().createMerchant('Access Shop');
    member = await signUp(harness(), 'plain');
    operatorWithoutTwoFactor = await signUp(harness(), 'no2fa');
    await harness()
      .sql()
      .query(`UPDATE member SET role = 'operator' WHERE username = ?`, [
        operatorWithoutTwoFactor.username,
      ]);
  });

  const operations: Array<[string, string, () => Record<string, unknown>]> = [
    ['blockPrepaidId', BLOCK, () => ({ input: { prepaidId: card, reason: 'test' } })],
    ['unblockPrepaidId', UNBLOCK, () => ({ input: { prepaidId: card, reason: 'test' } })],
    ['freezeWallet', FREEZE, () => ({ input: { username: member.username, reason: 'test' } })],
    ['unfreezeWallet', UNFREEZE, () => ({ input: { username: member.username, reason: 'test' } })],
    [
      'adjustBalance',
      ADJUST,
      () => ({
        input: {
          prepaidId: card,
          amount: 100,
          direction: 'CREDIT',
          reason: 'test',
          twoFactorCode: '123456',
        },
      }),
    ],
    [
      'setMerchantCreditLimit',
      CREDIT_LIMIT,
      () => ({
        input: {
          merchantId: toGlobalId('Merchant', merchant.id),
          creditLimit: 100,
          twoFactorCode: '123456',
        },
      }),
    ],
    ['ledgerCheck', LEDGER_CHECK, () => ({})],
    ['unusedBalanceReport', UNUSED_BALANCE, () => ({ asOf: new Date().toISOString() })],
  ];

  /** Everything that an operator operation could change, as one comparable value. */
  async function operatorState() {
    return harness()
      .sql()
      .query(
        `SELECT (SELECT string_agg(status, ',' ORDER BY id) FROM prepaid_id) AS prepaid_ids,
                (SELECT string_agg(status, ',' ORDER BY id) FROM wallet) AS wallets,
                (SELECT string_agg(credit_limit::text, ',' ORDER BY id) FROM merchant) AS limits,
                (SELECT count(*) FROM ledger_transaction) AS transactions,
                (SELECT count(*) FROM audit_log WHERE action IN (
                   'prepaid_id_blocked', 'prepaid_id_unblocked', 'wallet_frozen',
                   'wallet_unfrozen', 'balance_adjusted', 'credit_limit_changed')) AS audits`,
      );
  }

  test.each(operations)(
    '%s rejects callers without operator rights',
    async (name, query, variables) => {
      const before = await operatorState();
      const callers: Array<[string, string | undefined, string]> = [
        ['anonymous', undefined, 'UNAUTHENTICATED'],
        ['merchant key', merchant.key, 'UNAUTHENTICATED'],
        ['member', member.sessionToken, 'FORBIDDEN'],
        ['operator without 2FA', operatorWithoutTwoFactor.sessionToken, 'FORBIDDEN'],
      ];
      for (const [caller, token, expected] of callers) {
        const { data, errors } = await harness().request(query, variables(), token);
        expect({ caller, code: errors?.[0]?.extensions?.code }).toEqual({ caller, code: expected });
        expect({ caller, data: data?.[name] ?? null }).toEqual({ caller, data: null });
      }
      expect(await operatorState()).toEqual(before);
    },
  );
});

describe('blocking prepaid IDs', () => {
  let operator: Operator;
  let merchant: TestMerchant;

  beforeAll(async () => {
    operator = await newOperator('blocker');
    merchant = await harness().createMerchant('Block Shop');
  });

  test('blocked card cannot pay until unblocked', async () => {
    const [card] = await harness().issueCards(1, 1_000);
    const reason = 'card reported stolen';

    expect(await charge(merchant, card!, 100)).toMatchObject({ __typename: 'ChargeSuccess' });
    const blocked = await harness().request(
      BLOCK,
      { input: { prepaidId: card, reason } },
      operator.sessionToken,
    );
    const chargeWhileBlocked = await charge(merchant, card!, 100);
    const inquiryWhileBlocked = await harness().request(
      PREPAID_BALANCE,
      { id: card },
      merchant.key,
    );
    const blockedAgain = await harness().request(
      BLOCK,
      { input: { prepaidId: card, reason } },
      operator.sessionToken,
    );
    const unblocked = await harness().request(
      UNBLOCK,
      { input: { prepaidId: card, reason: 'card found' } },
      operator.sessionToken,
    );
    const chargeAfter = await charge(merchant, card!, 100);
    const inquiryAfter = await harness().request(PREPAID_BALANCE, { id: card }, merchant.key);

    expect(blocked.data!.blockPrepaidId).toEqual({
      __typename: 'PrepaidIdStatusSuccess',
      prepaidId: `**** **** **** ${card!.slice(-4)}`,
      kind: 'CARD',
      status: 'BLOCKED',
      changed: true,
    });
    expect(chargeWhileBlocked).toMatchObject({ code: 'INVALID_PREPAID_ID' });
    expect(inquiryWhileBlocked.data!.prepaidBalance).toEqual({ valid: false, balance: null });
    expect(blockedAgain.data!.blockPrepaidId).toMatchObject({ status: 'BLOCKED', changed: false });
    expect(unblocked.data!.unblockPrepaidId).toMatchObject({ status: 'ACTIVE', changed: true });
    expect(chargeAfter).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 800 });
    expect(inquiryAfter.data!.prepaidBalance).toEqual({ valid: true, balance: 800 });

    const blocks = (await auditRows('prepaid_id_blocked')).filter(
      (row) => row.details.lastDigits === card!.slice(-4),
    );
    const unblocks = (await auditRows('prepaid_id_unblocked')).filter(
      (row) => row.details.lastDigits === card!.slice(-4),
    );
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({
      actor_member_id: operator.id,
      ip: expect.stringMatching(/127\.0\.0\.1/),
      details: { reason, kind: 'card', previousStatus: 'active' },
    });
    expect(JSON.stringify(blocks[0]!.details)).not.toContain(card!);
    expect(unblocks).toHaveLength(1);
    expect(unblocks[0]).toMatchObject({
      actor_member_id: operator.id,
      details: { reason: 'card found', previousStatus: 'blocked' },
    });
  });

  test('unblock leaves a retired ID retired', async () => {
    const [card] = await harness().issueCards(1, 500);
    const found = await harness().services.prepaidIds.resolve(harness().sql(), card!);
    await harness().services.prepaidIds.setStatus(harness().sql(), found!.id, 'retired');

    const unblocked = await harness().request(
      UNBLOCK,
      { input: { prepaidId: card, reason: 'try' } },
      operator.sessionToken,
    );
    const blocked = await harness().request(
      BLOCK,
      { input: { prepaidId: card, reason: 'try' } },
      operator.sessionToken,
    );

    expect(unblocked.data!.unblockPrepaidId).toMatchObject({
      __typename: 'PrepaidIdStatusError',
      code: 'INVALID_PREPAID_ID',
      kind: 'CARD',
      status: 'RETIRED',
    });
    expect(blocked.data!.blockPrepaidId).toMatchObject({
      __typename: 'PrepaidIdStatusError',
      status: 'RETIRED',
    });
    expect(await prepaidIdStatus(card!)).toBe('retired');
  });

  test('block reports unknown and malformed IDs', async () => {
    const [card] = await harness().issueCards(1, 500);
    const unknown = await harness().request(
      BLOCK,
      { input: { prepaidId: generatePrepaidId(), reason: 'test' } },
      operator.sessionToken,
    );
    const malformed = await harness().request(
      BLOCK,
      { input: { prepaidId: '1234 5678', reason: 'test' } },
      operator.sessionToken,
    );
    const noReason = await harness().request(
      BLOCK,
      { input: { prepaidId: card, reason: '   ' } },
      operator.sessionToken,
    );

    expect(unknown.data!.blockPrepaidId).toMatchObject({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    expect(malformed.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'prepaidId',
    });
    expect(noReason.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'reason',
    });
    expect(await prepaidIdStatus(card!)).toBe('active');
  });
});

describe('freezing wallets', () => {
  test('frozen wallet cannot pay until unfrozen', async () => {
    const operator = await newOperator('freezer');
    const merchant = await harness().createMerchant('Freeze Shop');
    const owner = await signUp(harness(), 'frozen');
    const walletId = await walletPrepaidId(harness(), owner.sessionToken);
    await harness().fund(walletId, 1_000);
    const wallet = await harness().services.prepaidIds.resolve(harness().sql(), walletId);
    const oneTime = await harness().services.prepaidIds.create(
      harness().sql(),
      'one_time',
      wallet!.ledgerAccountId,
      { expiresAt: new Date(Date.now() + 3_600_000) },
    );
    const reason = 'suspected account takeover';

    expect(await charge(merchant, walletId, 100)).toMatchObject({ __typename: 'ChargeSuccess' });
    const frozen = await harness().request(
      FREEZE,
      { input: { username: owner.username.toUpperCase(), reason } },
      operator.sessionToken,
    );
    const walletCharge = await charge(merchant, walletId, 100);
    const oneTimeCharge = await charge(merchant, oneTime.digits, 100);
    const viewer = await harness().request(VIEWER, {}, owner.sessionToken);
    const frozenAgain = await harness().request(
      FREEZE,
      { input: { username: owner.username, reason } },
      operator.sessionToken,
    );
    const unfrozen = await harness().request(
      UNFREEZE,
      { input: { username: owner.username, reason: 'owner confirmed' } },
      operator.sessionToken,
    );
    const walletChargeAfter = await charge(merchant, walletId, 100);
    const oneTimeChargeAfter = await charge(merchant, oneTime.digits, 100);

    expect(frozen.data!.freezeWallet).toEqual({
      __typename: 'WalletStatusSuccess',
      walletId: viewer.data!.viewer.wallet.id,
      username: owner.username,
      status: 'FROZEN',
      changed: true,
    });
    expect(walletCharge).toMatchObject({ code: 'INVALID_PREPAID_ID' });
    expect(oneTimeCharge).toMatchObject({ code: 'INVALID_PREPAID_ID' });
    expect(viewer.data!.viewer.wallet).toMatchObject({ status: 'FROZEN', canPay: false });
    expect(frozenAgain.data!.freezeWallet).toMatchObject({ status: 'FROZEN', changed: false });
    expect(unfrozen.data!.unfreezeWallet).toMatchObject({ status: 'ACTIVE', changed: true });
    expect(walletChargeAfter).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 800 });
    // A one-time ID shows the merchant no balance: it is spent.
    expect(oneTimeChargeAfter).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 0 });

    const ownerId = await memberId(owner.username);
    expect(await auditRows('wallet_frozen')).toEqual([
      expect.objectContaining({
        actor_member_id: operator.id,
        subject_member_id: ownerId,
        details: expect.objectContaining({ reason, previousStatus: 'active' }),
      }),
    ]);
    expect(await auditRows('wallet_unfrozen')).toEqual([
      expect.objectContaining({
        actor_member_id: operator.id,
        subject_member_id: ownerId,
        details: expect.objectContaining({ reason: 'owner confirmed' }),
      }),
    ]);
  });

  test('freeze reports an unknown username', async () => {
    const operator = await newOperator('freezer');
    const { data } = await harness().request(
      FREEZE,
      { input: { username: 'nobody-by-this-name', reason: 'test' } },
      operator.sessionToken,
    );
    expect(data!.freezeWallet).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  // A NUL byte reached Postgres, which rejected it, and the caller got an internal error.
  test('freeze rejects a NUL in the username', async () => {
    const operator = await newOperator('nul-freezer');

    const { data, errors } = await harness().request(
      FREEZE,
      { input: { username: 'a\u0000b', reason: 'test' } },
      operator.sessionToken,
    );

    expect(data?.freezeWallet ?? null).toBeNull();
    expect(errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'username' });
  });
});

describe('balance adjustments', () => {
  let operator: Operator;

  beforeAll(async () => {
    operator = await newOperator('adjuster');
  });

  function adjust(
    prepaidId: string,
    amount: number,
    direction: 'CREDIT' | 'DEBIT',
    extra: Record<string, unknown> = {},
  ) {
    return harness().request(
      ADJUST,
      {
        input: {
          prepaidId,
          amount,
          direction,
          reason: `${direction.toLowerCase()} correction`,
          // A code given in `extra` is sent as it is, without moving the server's clock.
          twoFactorCode: 'twoFactorCode' in extra ? extra.twoFactorCode : code(operator),
          ...extra,
        },
      },
      operator.sessionToken,
    );
  }

  test('credit and debit move exact amounts', async () => {
    const [card] = await harness().issueCards(1, 1_000);
    const adjustmentAccount = await harness().services.ledger.operatorAccountId(
      harness().sql(),
      'adjustment',
    );
    const adjustmentBefore = await harness().accountBalance(adjustmentAccount);

    const credited = await adjust(card!, 250, 'CREDIT');
    const debited = await adjust(card!, 300, 'DEBIT');

    expect(credited.data!.adjustBalance).toMatchObject({
      __typename: 'AdjustBalanceSuccess',
      balanceAfter: 1_250,
      replayed: false,
      transaction: {
        kind: 'ADJUSTMENT',
        status: 'POSTED',
        amount: 250,
        direction: 'CREDIT',
        balanceAfter: 1_250,
        description: 'credit correction',
      },
    });
    expect(debited.data!.adjustBalance).toMatchObject({
      balanceAfter: 950,
      transaction: { amount: 300, direction: 'DEBIT' },
    });
    expect(await harness().balanceOf(card!)).toBe(950);
    expect(await harness().accountBalance(adjustmentAccount)).toBe(adjustmentBefore + 50);

    const rows = await harness()
      .sql()
      .query<{ kind: string; actor_member_id: string; description: string }>(
        `SELECT kind, actor_member_id, description FROM ledger_transaction
          WHERE prepaid_id_id = (SELECT prepaid_id_id FROM ledger_transaction
                                  WHERE description = 'debit correction' LIMIT 1)
            AND kind = 'adjustment' ORDER BY created_at`,
      );
    expect(rows).toEqual([
      { kind: 'adjustment', actor_member_id: operator.id, description: 'credit correction' },
      { kind: 'adjustment', actor_member_id: operator.id, description: 'debit correction' },
    ]);
    const audits = await auditRows('balance_adjusted');
    expect(audits.slice(-2)).toEqual([
      expect.objectContaining({
        actor_member_id: operator.id,
        details: expect.objectContaining({
          reason: 'credit correction',
          direction: 'credit',
          amount: 250,
        }),
      }),
      expect.objectContaining({
        actor_member_id: operator.id,
        details: expect.objectContaining({ reason: 'debit correction', direction: 'debit' }),
      }),
    ]);

    const check = await harness().request(LEDGER_CHECK, {}, operator.sessionToken);
    expect(check.data!.ledgerCheck).toMatchObject({
      balanced: true,
      totalPosted: 0,
      mismatches: [],
    });
    expect(check.data!.ledgerCheck.transactionCount).toBe(await transactionCount());
  });

  test('debit below zero moves nothing', async () => {
    const owner = await signUp(harness(), 'debited');
    const walletId = await walletPrepaidId(harness(), owner.sessionToken);
    await harness().fund(walletId, 400);
    const transactionsBefore = await transactionCount();
    const auditsBefore = (await auditRows('balance_adjusted')).length;

    const { data } = await adjust(walletId, 401, 'DEBIT');

    expect(data!.adjustBalance).toMatchObject({
      __typename: 'InsufficientBalanceError',
      code: 'INSUFFICIENT_BALANCE',
      available: 400,
    });
    expect(await harness().balanceOf(walletId)).toBe(400);
    expect(await transactionCount()).toBe(transactionsBefore);
    expect(await auditRows('balance_adjusted')).toHaveLength(auditsBefore);
  });

  test('wrong or missing code moves nothing', async () => {
    const [card] = await harness().issueCards(1, 1_000);
    const transactionsBefore = await transactionCount();
    const staleCode = currentTotpCode(operator.secret, harness().services.clock.now() - 600_000);
    const usedCode = code(operator);
    await adjust(card!, 1, 'CREDIT', { twoFactorCode: usedCode });
    const afterFirstUse = await transactionCount();

    const stale = await adjust(card!, 100, 'CREDIT', { twoFactorCode: staleCode });
    const empty = await adjust(card!, 100, 'CREDIT', { twoFactorCode: '' });
    const reused = await adjust(card!, 100, 'CREDIT', { twoFactorCode: usedCode });
    const recovery = await adjust(card!, 100, 'CREDIT', {
      twoFactorCode: operator.recoveryCodes[0],
    });
    const omitted = await harness().request(
      ADJUST,
      { input: { prepaidId: card, amount: 100, direction: 'CREDIT', reason: 'no code' } },
      operator.sessionToken,
    );

    expect(afterFirstUse).toBe(transactionsBefore + 1);
    for (const attempt of [stale, empty, reused, recovery]) {
      expect(attempt.data!.adjustBalance).toMatchObject({
        __typename: 'InvalidTwoFactorCodeError',
        code: 'INVALID_TWO_FACTOR_CODE',
      });
    }
    expect(omitted.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(await harness().balanceOf(card!)).toBe(1_001);
    expect(await transactionCount()).toBe(afterFirstUse);
  });

  test('idempotency key replays the adjustment', async () => {
    const [card] = await harness().issueCards(1, 1_000);
    const key = newKey('adjust');
    const auditsBefore = (await auditRows('balance_adjusted')).length;

    const first = await adjust(card!, 75, 'CREDIT', { idempotencyKey: key });
    const replay = await adjust(card!, 75, 'CREDIT', { idempotencyKey: key });
    const changed = await adjust(card!, 76, 'CREDIT', { idempotencyKey: key });

    expect(first.data!.adjustBalance).toMatchObject({ balanceAfter: 1_075, replayed: false });
    expect(replay.data!.adjustBalance).toMatchObject({ balanceAfter: 1_075, replayed: true });
    expect(replay.data!.adjustBalance.transaction.id).toBe(
      first.data!.adjustBalance.transaction.id,
    );
    expect(changed.data!.adjustBalance).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await harness().balanceOf(card!)).toBe(1_075);
    expect(await auditRows('balance_adjusted')).toHaveLength(auditsBefore + 1);
  });

  test('adjustment rejects bad input and unknown IDs', async () => {
    const [card] = await harness().issueCards(1, 1_000);
    const zero = await adjust(card!, 0, 'CREDIT');
    const noReason = await adjust(card!, 10, 'CREDIT', { reason: '' });
    const unknown = await adjust(generatePrepaidId(), 10, 'CREDIT');

    expect(zero.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'amount' });
    expect(noReason.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'reason',
    });
    expect(unknown.data!.adjustBalance).toMatchObject({ code: 'NOT_FOUND' });
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });
});

describe('merchant credit limits', () => {
  test('credit limit change is stored and audited', async () => {
    const operator = await newOperator('limiter');
    const merchant = await harness().createMerchant('Limit Shop');
    const merchantView = await harness().request(
      '{ merchant { id creditLimit } }',
      {},
      merchant.key,
    );
    const globalId = merchantView.data!.merchant.id as string;

    const wrongCode = await harness().request(
      CREDIT_LIMIT,
      { input: { merchantId: globalId, creditLimit: 9_000, twoFactorCode: '000000' } },
      operator.sessionToken,
    );
    const negative = await harness().request(
      CREDIT_LIMIT,
      { input: { merchantId: globalId, creditLimit: -1, twoFactorCode: code(operator) } },
      operator.sessionToken,
    );
    const changed = await harness().request(
      CREDIT_LIMIT,
      { input: { merchantId: globalId, creditLimit: 5_000, twoFactorCode: code(operator) } },
      operator.sessionToken,
    );
    const unknown = await harness().request(
      CREDIT_LIMIT,
      {
        input: {
          merchantId: toGlobalId('Merchant', '00000000-0000-4000-8000-000000000000'),
          creditLimit: 1,
          twoFactorCode: code(operator),
        },
      },
      operator.sessionToken,
    );
    const after = await harness().request('{ merchant { creditLimit } }', {}, merchant.key);

    expect(merchantView.data!.merchant.creditLimit).toBe(0);
    expect(wrongCode.data!.setMerchantCreditLimit).toMatchObject({
      code: 'INVALID_TWO_FACTOR_CODE',
    });
    expect(negative.errors![0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'creditLimit',
    });
    expect(changed.data!.setMerchantCreditLimit).toEqual({
      __typename: 'SetMerchantCreditLimitSuccess',
      merchantId: globalId,
      previousCreditLimit: 0,
      creditLimit: 5_000,
      changed: true,
    });
    expect(unknown.data!.setMerchantCreditLimit).toMatchObject({ code: 'NOT_FOUND' });
    expect(after.data!.merchant.creditLimit).toBe(5_000);
    expect(await auditRows('credit_limit_changed')).toEqual([
      expect.objectContaining({
        actor_member_id: operator.id,
        details: { merchantId: merchant.id, previousCreditLimit: 0, creditLimit: 5_000 },
      }),
    ]);
  });
});

describe('unused-balance report', () => {
  test('report matches balances now and earlier', async () => {
    const operator = await newOperator('reporter');
    const merchant = await harness().createMerchant('Report Shop');
    const report = async (asOf: string, url?: string) => {
      const { data, errors } = await harness().request(
        UNUSED_BALANCE,
        { asOf },
        operator.sessionToken,
        url,
      );
      if (errors) throw new Error(JSON.stringify(errors));
      const { asOf: _asOf, ...totals } = data!.unusedBalanceReport;
      return totals;
    };

    const cards = await harness().issueCards(2, 700);
    const owner = await signUp(harness(), 'reported');
    const walletId = await walletPrepaidId(harness(), owner.sessionToken);
    await harness().fund(walletId, 300);
    await charge(merchant, cards[0]!, 200);
    await charge(merchant, walletId, 50);
    // Points held by a pending authorization are still unused.
    const card = await harness().services.prepaidIds.resolve(harness().sql(), cards[1]!);
    const hold = await harness().services.ledger.post(harness().em(), {
      kind: 'authorization',
      status: 'pending',
      expiresAt: new Date(Date.now() + 600_000),
      debitAccountId: card!.ledgerAccountId,
      creditAccountId: merchant.settlementAccountId,
      merchantId: merchant.id,
      amount: 100,
    });
    expect(hold.ok).toBe(true);

    await sleep(20);
    const earlier = await databaseNow();
    const totalsEarlier = await storedValueTotals();
    await sleep(20);

    await charge(merchant, cards[0]!, 300);
    await charge(merchant, walletId, 250);
    await harness().issueCards(1, 1_000);
    await sleep(20);
    const now = await databaseNow();
    const totalsNow = await storedValueTotals();

    expect(totalsEarlier.walletTotal).toBeGreaterThanOrEqual(250);
    expect(totalsEarlier.cardTotal).toBeGreaterThanOrEqual(1_200);
    expect(totalsNow).not.toEqual(totalsEarlier);
    expect(await report(now.toISOString())).toEqual(totalsNow);
    expect(await report(earlier.toISOString())).toEqual(totalsEarlier);
    expect(await report(inTokyo(earlier))).toEqual(totalsEarlier);
    expect(await report('2000-01-01T00:00:00Z')).toEqual({
      walletTotal: 0,
      cardTotal: 0,
      total: 0,
      accountCount: 0,
    });

    // A second server whose database sessions run in Japan Standard Time.
    const database = await harness()
      .sql()
      .one<{ name: string }>('SELECT current_database() AS name');
    await harness().sql().query(`ALTER DATABASE "${database!.name}" SET timezone = 'Asia/Tokyo'`);
    try {
      const peer = await harness().startPeer();
      const zone = await sqlFor(peer.orm.em.fork()).one<{ TimeZone: string }>('SHOW timezone');
      expect(zone!.TimeZone).toBe('Asia/Tokyo');
      expect(await report(earlier.toISOString(), peer.url)).toEqual(totalsEarlier);
      expect(await report(inTokyo(now), peer.url)).toEqual(totalsNow);
    } finally {
      await harness().sql().query(`ALTER DATABASE "${database!.name}" RESET timezone`);
    }
  });

  test('report query probes the history indexes', async () => {
    const plan = await harness()
      .em()
      .transactional(async (tx) => {
        const sql = sqlFor(tx);
        await sql.query('SET LOCAL enable_seqscan = off');
        const moment = new Date().toISOString();
        const rows = await sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${UNUSED_BALANCE_SQL}`, [
          moment,
          moment,
          moment,
        ]);
        return rows.map((row) => row['QUERY PLAN']).join('\n');
      });
    expect(plan).toContain('ledger_transaction_debit_history_index');
    expect(plan).toContain('ledger_transaction_credit_history_index');
  });
});

describe('operator CLI commands', () => {
  test('grant and revoke the operator role', async () => {
    const member = await signUp(harness(), 'granted');
    const id = await memberId(member.username);
    const role = async () =>
      (await harness().sql().one<{ role: string }>('SELECT role FROM member WHERE id = ?', [id]))!
        .role;

    const granted = await admin(['operator:grant', '--username', member.username]);
    const roleAfterGrant = await role();
    const forbidden = await harness().request(LEDGER_CHECK, {}, member.sessionToken);
    const revoked = await admin(['operator:revoke', '--username', member.username]);
    const unknown = await admin(['operator:grant', '--username', 'nobody-by-this-name']);

    expect(granted.code).toBe(0);
    expect(granted.lines).toEqual([
      `${member.username} is now an operator`,
      'Two-factor authentication is off: operator operations are rejected until the member turns it on with enrollTotp and confirmTotp.',
    ]);
    expect(roleAfterGrant).toBe('operator');
    expect(forbidden.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect(revoked).toEqual({ code: 0, lines: [`${member.username} is no longer an operator`] });
    expect(await role()).toBe('member');
    expect(unknown.code).toBe(1);
    const audits = await harness()
      .sql()
      .query<{ action: string; actor_member_id: string | null; details: unknown }>(
        `SELECT action, actor_member_id, details FROM audit_log
          WHERE subject_member_id = ? AND action IN ('operator_granted', 'operator_revoked')
          ORDER BY id`,
        [id],
      );
    expect(audits).toEqual([
      {
        action: 'operator_granted',
        actor_member_id: null,
        details: { via: 'cli', previousRole: 'member', role: 'operator' },
      },
      {
        action: 'operator_revoked',
        actor_member_id: null,
        details: { via: 'cli', previousRole: 'operator', role: 'member' },
      },
    ]);
  });

  test('block, unblock and adjust a card', async () => {
    const merchant = await harness().createMerchant('CLI Block Shop');
    const [card] = await harness().issueCards(1, 1_000);
    const masked = `**** **** **** ${card!.slice(-4)}`;

    const blocked = await admin(['prepaid:block', '--id', card!, '--reason', 'lost at the till']);
    const chargeWhileBlocked = await charge(merchant, card!, 100);
    const unblocked = await admin(['prepaid:unblock', '--id', card!, '--reason', 'found']);
    const credited = await admin([
      'ledger:adjust',
      '--id',
      card!,
      '--amount',
      '200',
      '--direction',
      'credit',
      '--reason',
      'goodwill credit',
    ]);
    const overdrawn = await admin([
      'ledger:adjust',
      '--id',
      card!,
      '--amount',
      '1201',
      '--direction',
      'debit',
      '--reason',
      'too much',
    ]);

    expect(blocked).toEqual({ code: 0, lines: [`card prepaid ID ${masked} blocked`] });
    expect(chargeWhileBlocked).toMatchObject({ code: 'INVALID_PREPAID_ID' });
    expect(unblocked).toEqual({ code: 0, lines: [`card prepaid ID ${masked} unblocked`] });
    expect(credited.code).toBe(0);
    expect(credited.lines[0]).toMatch(
      /^credited 200 points; balance now 1200 points \(transaction [0-9a-f-]{36}\)$/,
    );
    expect(overdrawn.code).toBe(1);
    expect(overdrawn.lines).toEqual([
      'error: the prepaid ID has 1200 points available, fewer than 1201; nothing was moved',
    ]);
    expect(await harness().balanceOf(card!)).toBe(1_200);
    expect(await prepaidIdStatus(card!)).toBe('active');

    const transactionId = /transaction ([0-9a-f-]{36})/.exec(credited.lines[0]!)![1];
    const posted = await harness()
      .sql()
      .one<{ actor_member_id: string | null; description: string; metadata: unknown }>(
        'SELECT actor_member_id, description, metadata FROM ledger_transaction WHERE id = ?',
        [transactionId],
      );
    expect(posted).toEqual({
      actor_member_id: null,
      description: 'goodwill credit',
      metadata: { via: 'cli' },
    });
    const [blockAudit] = (await auditRows('prepaid_id_blocked')).filter(
      (row) => row.details.lastDigits === card!.slice(-4),
    );
    expect(blockAudit).toMatchObject({
      actor_member_id: null,
      details: { via: 'cli', reason: 'lost at the till' },
    });
    const [adjustAudit] = (await auditRows('balance_adjusted')).filter(
      (row) => row.details.transactionId === transactionId,
    );
    expect(adjustAudit).toMatchObject({
      actor_member_id: null,
      details: { via: 'cli', reason: 'goodwill credit', amount: 200 },
    });
  });

  test('report prints the unused balance', async () => {
    await harness().issueCards(1, 300);
    const totals = await storedValueTotals();
    const now = await databaseNow();

    // Another time zone for the CLI process, which must not change the result.
    const printed = await admin(['report:unused-balance', '--as-of', inTokyo(now)], {
      TZ: 'America/New_York',
    });

    expect(printed).toEqual({
      code: 0,
      lines: [
        `unused balance as of ${now.toISOString()}`,
        `wallets   ${totals.walletTotal} points`,
        `cards     ${totals.cardTotal} points`,
        `total     ${totals.total} points`,
        `accounts with a balance  ${totals.accountCount}`,
      ],
    });
  });

  test('usage errors exit with 2', async () => {
    const [card] = await harness().issueCards(1, 100);
    const noReason = await admin(['prepaid:block', '--id', card!]);
    const malformed = await admin(['prepaid:block', '--id', '1234', '--reason', 'typo']);
    const direction = await admin([
      'ledger:adjust',
      '--id',
      card!,
      '--amount',
      '5',
      '--direction',
      'sideways',
      '--reason',
      'test',
    ]);
    const noOffset = await admin(['report:unused-balance', '--as-of', '2027-03-31T23:59:59']);
    const limit = await admin([
      'merchant:credit-limit',
      '--merchant',
      '00000000-0000-4000-8000-000000000000',
      '--limit',
      'ten',
    ]);

    expect(noReason.code).toBe(2);
    expect(noReason.lines[0]).toBe('error: --reason is required');
    expect(malformed.code).toBe(2);
    expect(malformed.lines[0]).toBe(
      'error: --id must be 16 digits with a valid check digit; spaces and hyphens are ignored',
    );
    expect(direction.code).toBe(2);
    expect(direction.lines[0]).toBe('error: --direction must be credit or debit, got "sideways"');
    expect(noOffset.code).toBe(2);
    expect(noOffset.lines[0]).toMatch(
      /^error: --as-of must be an ISO 8601 date and time with an offset/,
    );
    expect(limit.code).toBe(2);
    expect(await prepaidIdStatus(card!)).toBe('active');
  });

  test('credit limit command sets the limit', async () => {
    const merchant = await harness().createMerchant('CLI Limit Shop');
    const set = await admin([
      'merchant:credit-limit',
      '--merchant',
      merchant.id,
      '--limit',
      '2500',
    ]);
    const again = await admin([
      'merchant:credit-limit',
      '--merchant',
      merchant.id,
      '--limit',
      '2500',
    ]);

    expect(set).toEqual({
      code: 0,
      lines: [`credit limit of merchant ${merchant.id} changed from 0 to 2500 points`],
    });
    expect(again.lines).toEqual([
      `credit limit of merchant ${merchant.id} is 2500 points already; nothing changed`,
    ]);
    const merchantRow = await harness().services.merchants.find(harness().sql(), merchant.id);
    expect(merchantRow!.creditLimit).toBe(2_500);
  });
});
