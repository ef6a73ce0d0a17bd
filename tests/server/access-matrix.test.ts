/**
 * Who may call each root field of schema.graphql, as one table.
 *
 * The variables of every cell aim at the first member's and the first
 * merchant's data, so a missing check would show up as a change to that
 * data. Every denied cell is sent and must change nothing. A sample of the
 * allowed cells is sent and must succeed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, type OperationTypeNode } from 'graphql';
import type { Client } from 'graphql-ws';
import {
  apiKeyPrefix,
  CHARGE,
  chargeInput,
  newKey,
  useHarness,
  waitFor,
  type GraphQLResponse,
  type TestMerchant,
} from '../support/harness';
import {
  enableTwoFactor,
  freshTotpCode,
  newIdentity,
  signIn,
  signUp,
  walletPrepaidId,
  type TestMember,
} from '../support/members';

const harness = useHarness({}, { smtp: true });

const CALLERS = [
  'anonymous',
  'member',
  'otherMember',
  'operator',
  'merchant',
  'otherMerchant',
  'revokedKey',
  'endedSession',
] as const;

type CallerKind = (typeof CALLERS)[number];

/** Allowed: the operation runs for this caller. */
const OK = 'ok';
/** Allowed, and the field is null for this caller: `viewer` without a session. */
const NULL = 'null';
const UNAUTH = 'UNAUTHENTICATED';
const FORBID = 'FORBIDDEN';
/** The typed "not found" result of the row, for another member's or merchant's data. */
const NOT_FOUND = 'not found';
/** graphql-ws closes the socket at connection_init with code 4403 Forbidden, before any operation. */
const REFUSED = 'refused';

type Cell =
  typeof OK | typeof NULL | typeof UNAUTH | typeof FORBID | typeof NOT_FOUND | typeof REFUSED;

// prettier-ignore
const ACCESS: Record<string, Cell[]> = {
  //                         anonymous  member     otherMember operator   merchant   otherMerchant revokedKey endedSession
  // Query
  ledgerCheck:              [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  merchant:                 [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        OK,           UNAUTH,    UNAUTH],
  prepaidBalance:           [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  unusedBalanceReport:      [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  viewer:                   [NULL,      OK,        OK,         OK,        NULL,      NULL,         UNAUTH,    UNAUTH],
  withdrawalPreview:        [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  // Mutation
  adjustBalance:            [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  authorize:                [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        OK,           UNAUTH,    UNAUTH],
  blockPrepaidId:           [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  cancelOneTimePrepaidId:   [UNAUTH,    OK,        NOT_FOUND,  NOT_FOUND, UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  capture:                  [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        NOT_FOUND,    UNAUTH,    UNAUTH],
  changePassword:           [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  charge:                   [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        OK,           UNAUTH,    UNAUTH],
  completeLogin:            [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  confirmTotp:              [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  createOneTimePrepaidId:   [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  creditPoints:             [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        OK,           UNAUTH,    UNAUTH],
  disableTotp:              [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  endSession:               [UNAUTH,    OK,        NOT_FOUND,  NOT_FOUND, UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  enrollTotp:               [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  freezeWallet:             [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  login:                    [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  logout:                   [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  logoutEverywhere:         [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  refund:                   [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        NOT_FOUND,    UNAUTH,    UNAUTH],
  register:                 [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  requestPasswordReset:     [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  requestUsernameReminder:  [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  resendVerification:       [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  resetPassword:            [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  revealPrepaidId:          [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  rotatePrepaidId:          [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  setMerchantCreditLimit:   [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  transfer:                 [UNAUTH,    OK,        NOT_FOUND,  NOT_FOUND, UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  unblockPrepaidId:         [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  unfreezeWallet:           [UNAUTH,    FORBID,    FORBID,     OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  verifyEmail:              [OK,        OK,        OK,         OK,        OK,        OK,           UNAUTH,    UNAUTH],
  voidAuthorization:        [UNAUTH,    UNAUTH,    UNAUTH,     UNAUTH,    OK,        NOT_FOUND,    UNAUTH,    UNAUTH],
  withdraw:                 [UNAUTH,    OK,        OK,         OK,        UNAUTH,    UNAUTH,       UNAUTH,    UNAUTH],
  // Subscription, over graphql-ws
  balanceChanged:           [REFUSED,   OK,        OK,         OK,        UNAUTH,    UNAUTH,       REFUSED,   REFUSED],
  merchantTransactionPosted:[REFUSED,   UNAUTH,    UNAUTH,     UNAUTH,    OK,        OK,           REFUSED,   REFUSED],
};

function expected(operation: string, caller: CallerKind): Cell {
  return ACCESS[operation]![CALLERS.indexOf(caller)]!;
}

interface Fixtures {
  member: TestMember;
  memberWalletId: string;
  memberSessionId: string;
  memberOneTimeId: string;
  otherMember: TestMember;
  operator: TestMember & { secret: string };
  merchant: TestMerchant;
  merchantGlobalId: string;
  otherMerchant: TestMerchant;
  chargeId: string;
  authorizationId: string;
  cards: string[];
  tokens: Record<CallerKind, string | undefined>;
}

let fixtures: Fixtures;

interface OperationCall {
  document: string;
  /** Valid variables aimed at the first member's and the first merchant's data. */
  variables: (f: Fixtures) => Record<string, unknown>;
  /** The typed result of a NOT_FOUND cell. */
  notFound?: unknown;
}

const ERROR_FIELDS = '__typename ... on UserError { code message }';

/** The request of each operation in the table. */
const CALLS: Record<string, OperationCall> = {
  ledgerCheck: { document: '{ ledgerCheck { balanced transactionCount } }', variables: () => ({}) },
  merchant: { document: '{ merchant { id name settlementBalance } }', variables: () => ({}) },
  prepaidBalance: {
    document: 'query B($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }',
    variables: (f) => ({ id: f.memberWalletId }),
  },
  unusedBalanceReport: {
    document: 'query U($asOf: DateTimeISO!) { unusedBalanceReport(asOf: $asOf) { total } }',
    variables: () => ({ asOf: new Date().toISOString() }),
  },
  viewer: { document: '{ viewer { id username email } }', variables: () => ({}) },
  withdrawalPreview: {
    document: '{ withdrawalPreview { forfeitAmount held } }',
    variables: () => ({}),
  },
  adjustBalance: {
    document: `mutation A($input: AdjustBalanceInput!) { adjustBalance(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: {
        prepaidId: f.memberWalletId,
        amount: 100,
        direction: 'CREDIT',
        reason: 'access matrix',
        twoFactorCode: '123456',
      },
    }),
  },
  authorize: {
    document: `mutation A($input: AuthorizeInput!) { authorize(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: {
        prepaidId: f.memberWalletId,
        amount: 100,
        idempotencyKey: newKey('matrix-hold'),
        orderReference: 'matrix',
      },
    }),
  },
  blockPrepaidId: {
    document: `mutation B($input: PrepaidIdStatusChangeInput!) { blockPrepaidId(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { prepaidId: f.memberWalletId, reason: 'access matrix' } }),
  },
  cancelOneTimePrepaidId: {
    document: `mutation C($id: String!) { cancelOneTimePrepaidId(id: $id) { ${ERROR_FIELDS} ... on OneTimePrepaidIdCancelled { id } } }`,
    variables: (f) => ({ id: f.memberOneTimeId }),
    notFound: { __typename: 'OneTimeIdNotFoundError', code: 'ONE_TIME_ID_NOT_FOUND' },
  },
  capture: {
    document: `mutation C($input: CaptureInput!) { capture(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { authorizationId: f.authorizationId } }),
    notFound: { __typename: 'AuthorizationNotFoundError', code: 'AUTHORIZATION_NOT_FOUND' },
  },
  changePassword: {
    document: `mutation C($input: ChangePasswordInput!) { changePassword(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: { currentPassword: f.member.password, newPassword: 'a different long passphrase 7' },
    }),
  },
  charge: {
    document: `mutation C($input: ChargeInput!) { charge(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => chargeInput(f.memberWalletId, 100),
  },
  completeLogin: {
    document: `mutation C($input: CompleteLoginInput!) { completeLogin(input: $input) { ${ERROR_FIELDS} } }`,
    variables: () => ({ input: { challengeToken: `mc_${'A'.repeat(43)}`, code: '123456' } }),
  },
  confirmTotp: {
    document: `mutation C($code: String!) { confirmTotp(code: $code) { ${ERROR_FIELDS} } }`,
    variables: () => ({ code: '123456' }),
  },
  createOneTimePrepaidId: {
    document: `mutation C($input: CreateOneTimePrepaidIdInput!) { createOneTimePrepaidId(input: $input) { ${ERROR_FIELDS} } }`,
    variables: () => ({ input: { amountCap: 100 } }),
  },
  creditPoints: {
    document: `mutation C($input: CreditPointsInput!) { creditPoints(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: { prepaidId: f.memberWalletId, amount: 100, idempotencyKey: newKey('matrix-credit') },
    }),
  },
  disableTotp: {
    document: `mutation D($input: DisableTotpInput!) { disableTotp(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { password: f.member.password, code: '123456' } }),
  },
  endSession: {
    document: 'mutation E($id: String!) { endSession(sessionId: $id) { endedSessions } }',
    variables: (f) => ({ id: f.memberSessionId }),
    notFound: { endedSessions: 0 },
  },
  enrollTotp: { document: `mutation { enrollTotp { ${ERROR_FIELDS} } }`, variables: () => ({}) },
  freezeWallet: {
    document: `mutation F($input: WalletStatusChangeInput!) { freezeWallet(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { username: f.member.username, reason: 'access matrix' } }),
  },
  login: {
    document: `mutation L($input: LoginInput!) { login(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { login: f.member.username, password: f.member.password } }),
  },
  logout: { document: 'mutation { logout { endedSessions } }', variables: () => ({}) },
  logoutEverywhere: {
    document: 'mutation { logoutEverywhere { endedSessions } }',
    variables: () => ({}),
  },
  refund: {
    document: `mutation R($input: RefundInput!) { refund(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: { transactionId: f.chargeId, idempotencyKey: newKey('matrix-refund') },
    }),
    notFound: { __typename: 'TransactionNotFoundError', code: 'TRANSACTION_NOT_FOUND' },
  },
  register: {
    document: `mutation R($input: RegisterInput!) { register(input: $input) { ${ERROR_FIELDS} } }`,
    variables: () => ({ input: newIdentity('matrixreg') }),
  },
  requestPasswordReset: {
    document: 'mutation R($email: String!) { requestPasswordReset(email: $email) { message } }',
    variables: (f) => ({ email: f.member.email }),
  },
  requestUsernameReminder: {
    document: 'mutation R($email: String!) { requestUsernameReminder(email: $email) { message } }',
    variables: (f) => ({ email: f.member.email }),
  },
  resendVerification: {
    document: 'mutation R($email: String!) { resendVerification(email: $email) { message } }',
    variables: (f) => ({ email: f.member.email }),
  },
  resetPassword: {
    document: `mutation R($input: ResetPasswordInput!) { resetPassword(input: $input) { ${ERROR_FIELDS} } }`,
    variables: () => ({
      input: { token: `pr_${'A'.repeat(43)}`, newPassword: 'a different long passphrase 7' },
    }),
  },
  revealPrepaidId: {
    document: `mutation R($code: String) { revealPrepaidId(twoFactorCode: $code) { ${ERROR_FIELDS} ... on PrepaidIdRevealed { prepaidId } } }`,
    variables: () => ({ code: null }),
  },
  rotatePrepaidId: {
    document: `mutation R($code: String) { rotatePrepaidId(twoFactorCode: $code) { ${ERROR_FIELDS} } }`,
    variables: () => ({ code: null }),
  },
  setMerchantCreditLimit: {
    document: `mutation S($input: SetMerchantCreditLimitInput!) { setMerchantCreditLimit(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: { merchantId: f.merchantGlobalId, creditLimit: 5_000, twoFactorCode: '123456' },
    }),
  },
  transfer: {
    document: `mutation T($input: TransferInput!) { transfer(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { sourcePrepaidId: f.memberWalletId } }),
    notFound: { __typename: 'TransferNotAllowedError', code: 'TRANSFER_NOT_ALLOWED' },
  },
  unblockPrepaidId: {
    document: `mutation U($input: PrepaidIdStatusChangeInput!) { unblockPrepaidId(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { prepaidId: f.memberWalletId, reason: 'access matrix' } }),
  },
  unfreezeWallet: {
    document: `mutation U($input: WalletStatusChangeInput!) { unfreezeWallet(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { username: f.member.username, reason: 'access matrix' } }),
  },
  verifyEmail: {
    document: `mutation V($token: String!) { verifyEmail(token: $token) { ${ERROR_FIELDS} } }`,
    variables: () => ({ token: `ev_${'A'.repeat(43)}` }),
  },
  voidAuthorization: {
    document: `mutation V($input: VoidInput!) { voidAuthorization(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({ input: { authorizationId: f.authorizationId } }),
    notFound: { __typename: 'AuthorizationNotFoundError', code: 'AUTHORIZATION_NOT_FOUND' },
  },
  withdraw: {
    document: `mutation W($input: WithdrawInput!) { withdraw(input: $input) { ${ERROR_FIELDS} } }`,
    variables: (f) => ({
      input: { password: f.member.password, confirmForfeitAmount: 5_000 },
    }),
  },
};

const SUBSCRIPTIONS: Record<string, string> = {
  balanceChanged: 'subscription { balanceChanged { balancePosted transaction { amount } } }',
  merchantTransactionPosted:
    'subscription { merchantTransactionPosted { settlementBalance transaction { amount } } }',
};

const schema = buildSchema(readFileSync(path.join(__dirname, '../../schema.graphql'), 'utf8'));

function rootFields(operation: OperationTypeNode): string[] {
  return Object.keys(schema.getRootType(operation)?.getFields() ?? {});
}

/**
 * Reads everything that a call could change, as one comparable value: money,
 * statuses, credentials, sessions, tokens, keys and queued mail. Audit rows
 * and rate-limit counters are left out, because failed attempts write them.
 */
async function state() {
  return harness()
    .sql()
    .one(
      `SELECT
         (SELECT count(*) FROM ledger_transaction) AS transactions,
         (SELECT string_agg(row(id, balance_posted, balance_held)::text, ',' ORDER BY id)
            FROM ledger_account) AS balances,
         (SELECT string_agg(row(id, status)::text, ',' ORDER BY id) FROM prepaid_id) AS prepaid_ids,
         (SELECT string_agg(row(id, status, prepaid_id_id)::text, ',' ORDER BY id) FROM wallet) AS wallets,
         (SELECT string_agg(row(id, credit_limit)::text, ',' ORDER BY id) FROM merchant) AS merchants,
         (SELECT string_agg(row(id, revoked_at)::text, ',' ORDER BY id) FROM merchant_api_key) AS keys,
         (SELECT string_agg(row(id, role, status, email, username, password_hash, totp_secret,
                                totp_pending_secret, totp_enabled_at, email_verified_at)::text,
                            ',' ORDER BY id) FROM member) AS members,
         (SELECT string_agg(row(id, ended_at)::text, ',' ORDER BY id) FROM member_session) AS sessions,
         (SELECT string_agg(row(id, used_at)::text, ',' ORDER BY id) FROM recovery_code) AS recovery_codes,
         (SELECT count(*) FROM member_token) AS tokens,
         (SELECT count(*) FROM login_challenge) AS challenges,
         (SELECT count(*) FROM mail_outbox) AS mails`,
    );
}

async function request(operation: string, caller: CallerKind, variables?: Record<string, unknown>) {
  const call = CALLS[operation]!;
  return harness().request(
    call.document,
    variables ?? call.variables(fixtures),
    fixtures.tokens[caller],
  );
}

beforeAll(async () => {
  const member = await signUp(harness(), 'first');
  const otherMember = await signUp(harness(), 'other');
  const operatorMember = await signUp(harness(), 'operator');
  const { secret } = await enableTwoFactor(harness(), operatorMember.sessionToken);
  await harness()
    .sql()
    .query(`UPDATE member SET role = 'operator' WHERE username = ?`, [operatorMember.username]);

  const merchant = await harness().createMerchant('First Shop');
  const otherMerchant = await harness().createMerchant('Other Shop');
  const revoked = await harness().createMerchant('Revoked Shop');
  await harness().services.apiKeys.revoke(harness().sql(), apiKeyPrefix(revoked.key));
  const ended = await signUp(harness(), 'ended');
  await harness().request('mutation { logout { endedSessions } }', {}, ended.sessionToken);

  const memberWalletId = await walletPrepaidId(harness(), member.sessionToken);
  await harness().fund(memberWalletId, 5_000);
  const cards = await harness().issueCards(4, 1_000);

  const sessions = await harness().request(
    '{ viewer { sessions { id current } } }',
    {},
    member.sessionToken,
  );
  const oneTime = await harness().request(
    'mutation { createOneTimePrepaidId(input: {amountCap: 500}) { ... on OneTimePrepaidIdCreated { id } } }',
    {},
    member.sessionToken,
  );
  const charged = await harness().request(
    'mutation C($input: ChargeInput!) { charge(input: $input) { ... on ChargeSuccess { transaction { id } } } }',
    chargeInput(cards[0]!, 200),
    merchant.key,
  );
  const authorized = await harness().request(
    'mutation A($input: AuthorizeInput!) { authorize(input: $input) { ... on AuthorizationSuccess { authorization { id } } } }',
    {
      input: {
        prepaidId: cards[1],
        amount: 300,
        idempotencyKey: newKey('hold'),
        orderReference: 'h',
      },
    },
    merchant.key,
  );
  const merchantView = await harness().request('{ merchant { id } }', {}, merchant.key);

  fixtures = {
    member,
    memberWalletId,
    memberSessionId: sessions.data!.viewer.sessions[0].id,
    memberOneTimeId: oneTime.data!.createOneTimePrepaidId.id,
    otherMember,
    operator: { ...operatorMember, secret },
    merchant,
    merchantGlobalId: merchantView.data!.merchant.id,
    otherMerchant,
    chargeId: charged.data!.charge.transaction.id,
    authorizationId: authorized.data!.authorize.authorization.id,
    cards,
    tokens: {
      anonymous: undefined,
      member: member.sessionToken,
      otherMember: otherMember.sessionToken,
      operator: operatorMember.sessionToken,
      merchant: merchant.key,
      otherMerchant: otherMerchant.key,
      revokedKey: revoked.key,
      endedSession: ended.sessionToken,
    },
  };
});

describe('access table', () => {
  test('covers every root field of schema.graphql', () => {
    const fields = [
      ...rootFields('query' as OperationTypeNode),
      ...rootFields('mutation' as OperationTypeNode),
      ...rootFields('subscription' as OperationTypeNode),
    ].sort();

    expect(Object.keys(ACCESS).sort()).toEqual(fields);
    expect([...Object.keys(CALLS), ...Object.keys(SUBSCRIPTIONS)].sort()).toEqual(fields);
    for (const [operation, cells] of Object.entries(ACCESS)) {
      expect({ operation, cells: cells.length }).toEqual({ operation, cells: CALLERS.length });
    }
  });

  test('names a not-found result wherever a cell expects one', () => {
    for (const [operation, cells] of Object.entries(ACCESS)) {
      if (!cells.includes(NOT_FOUND)) continue;
      expect({ operation, notFound: CALLS[operation]?.notFound !== undefined }).toEqual({
        operation,
        notFound: true,
      });
    }
  });
});

const QUERIES_AND_MUTATIONS = Object.keys(CALLS).sort();

describe('denied cells over HTTP', () => {
  test.each(QUERIES_AND_MUTATIONS)('%s denies and changes nothing', async (operation) => {
    for (const caller of CALLERS) {
      const cell = expected(operation, caller);
      if (cell === OK) continue;
      const before = await state();

      const response = await request(operation, caller);

      const field = response.data?.[operation] ?? null;
      if (cell === UNAUTH || cell === FORBID) {
        expect({ caller, codes: response.errors?.map((error) => error.extensions?.code) }).toEqual({
          caller,
          codes: [cell],
        });
        expect({ caller, field }).toEqual({ caller, field: null });
      }
      if (caller === 'revokedKey' || caller === 'endedSession') {
        expect({ caller, status: response.status }).toEqual({ caller, status: 401 });
      }
      if (cell === NULL) {
        expect({ caller, errors: response.errors, field }).toEqual({
          caller,
          errors: undefined,
          field: null,
        });
      }
      if (cell === NOT_FOUND) {
        expect({ caller, errors: response.errors }).toEqual({ caller, errors: undefined });
        // The message is a sentence for people, so only the type and the code are compared.
        const withoutMessage =
          typeof field === 'object' && field !== null
            ? Object.fromEntries(Object.entries(field).filter(([key]) => key !== 'message'))
            : field;
        expect({ caller, result: withoutMessage }).toEqual({
          caller,
          result: CALLS[operation]!.notFound,
        });
      }
      expect({ caller, state: await state() }).toEqual({ caller, state: before });
    }
  });
});

interface SubscriptionOutcome {
  events: Array<{ data?: unknown; errors?: Array<{ extensions?: { code?: string } }> }>;
  /** Errors that graphql-ws sent as an `error` message. */
  errors?: Array<{ extensions?: { code?: string } }>;
  closeCode?: number;
  completed: boolean;
}

/** Subscribes and records what happens: events, an error list, or the socket closing. */
function watch(client: Client, query: string): SubscriptionOutcome {
  const outcome: SubscriptionOutcome = { events: [], completed: false };
  client.subscribe(
    { query },
    {
      next: (event) => outcome.events.push(event as SubscriptionOutcome['events'][number]),
      error: (error) => {
        if (Array.isArray(error)) outcome.errors = error;
        else outcome.closeCode = (error as { code?: number }).code;
      },
      complete: () => {
        outcome.completed = true;
      },
    },
  );
  return outcome;
}

describe('denied cells over graphql-ws', () => {
  test.each(Object.keys(SUBSCRIPTIONS))('%s rejects denied callers', async (operation) => {
    for (const caller of CALLERS) {
      const cell = expected(operation, caller);
      if (cell === OK) continue;
      const client = harness().wsClient(fixtures.tokens[caller]);

      const outcome = watch(client, SUBSCRIPTIONS[operation]!);
      await waitFor(
        () => outcome.completed || outcome.errors !== undefined || outcome.closeCode !== undefined,
        5_000,
        `${operation} as ${caller} to fail`,
      );

      if (cell === REFUSED) {
        expect({ caller, closeCode: outcome.closeCode }).toEqual({ caller, closeCode: 4403 });
        expect({ caller, events: outcome.events }).toEqual({ caller, events: [] });
      } else {
        // graphql-ws sends the errors of a failed subscribe as one `next` result, then `complete`.
        const errors = outcome.errors ?? outcome.events.flatMap((event) => event.errors ?? []);
        const codes = errors.map((error) => error.extensions?.code);
        expect({ caller, codes }).toEqual({ caller, codes: [cell] });
        expect({ caller, data: outcome.events.map((event) => event.data ?? null) }).toEqual({
          caller,
          data: outcome.errors ? [] : [null],
        });
        // The socket stays open for the operations that the caller may run.
        const after = watch(client, '{ __typename }');
        await waitFor(() => after.events.length > 0, 5_000, 'a query on the same socket');
        expect(after.events).toEqual([{ data: { __typename: 'Query' } }]);
      }
    }
  });
});

/** Allowed cells that are sent, with the result each must produce. */
const ALLOWED_SAMPLES: Array<
  [
    string,
    CallerKind,
    () => Record<string, unknown> | undefined,
    (response: GraphQLResponse) => void,
  ]
> = [
  [
    'viewer',
    'member',
    () => undefined,
    ({ data }) => expect(data!.viewer.username).toBe(fixtures.member.username),
  ],
  [
    'viewer',
    'otherMember',
    () => undefined,
    ({ data }) => expect(data!.viewer.username).toBe(fixtures.otherMember.username),
  ],
  [
    'prepaidBalance',
    'anonymous',
    () => ({ id: fixtures.cards[2] }),
    ({ data }) => expect(data!.prepaidBalance).toEqual({ valid: true, balance: 1_000 }),
  ],
  [
    'prepaidBalance',
    'otherMerchant',
    () => ({ id: fixtures.cards[2] }),
    ({ data }) => expect(data!.prepaidBalance).toEqual({ valid: true, balance: 1_000 }),
  ],
  [
    'merchant',
    'merchant',
    () => undefined,
    ({ data }) => expect(data!.merchant.name).toBe('First Shop'),
  ],
  [
    'merchant',
    'otherMerchant',
    () => undefined,
    ({ data }) => expect(data!.merchant.name).toBe('Other Shop'),
  ],
  [
    'withdrawalPreview',
    'otherMember',
    () => undefined,
    ({ data }) => expect(data!.withdrawalPreview).toEqual({ forfeitAmount: 0, held: 0 }),
  ],
  [
    'ledgerCheck',
    'operator',
    () => undefined,
    ({ data }) => expect(data!.ledgerCheck.balanced).toBe(true),
  ],
  [
    'unusedBalanceReport',
    'operator',
    () => undefined,
    ({ data }) => expect(data!.unusedBalanceReport.total).toBeGreaterThan(0),
  ],
  [
    'charge',
    'otherMerchant',
    () => chargeInput(fixtures.cards[3]!, 100),
    ({ data }) => expect(data!.charge.__typename).toBe('ChargeSuccess'),
  ],
  [
    'refund',
    'merchant',
    () => ({ input: { transactionId: fixtures.chargeId, amount: 10, idempotencyKey: newKey() } }),
    ({ data }) => expect(data!.refund.__typename).toBe('RefundSuccess'),
  ],
  [
    'creditPoints',
    'merchant',
    () => ({ input: { prepaidId: fixtures.memberWalletId, amount: 10, idempotencyKey: newKey() } }),
    ({ data }) => expect(data!.creditPoints.__typename).toBe('CreditSuccess'),
  ],
  [
    'revealPrepaidId',
    'member',
    () => undefined,
    ({ data }) => expect(data!.revealPrepaidId.prepaidId).toBe(fixtures.memberWalletId),
  ],
  [
    'createOneTimePrepaidId',
    'otherMember',
    () => undefined,
    ({ data }) => expect(data!.createOneTimePrepaidId.__typename).toBe('OneTimePrepaidIdCreated'),
  ],
  [
    'enrollTotp',
    'otherMember',
    () => undefined,
    ({ data }) => expect(data!.enrollTotp.__typename).toBe('TotpEnrollment'),
  ],
  [
    'login',
    'merchant',
    () => undefined,
    ({ data }) => expect(data!.login.__typename).toBe('LoginSuccess'),
  ],
  [
    'register',
    'anonymous',
    () => undefined,
    ({ data }) => expect(data!.register.__typename).toBe('RequestAccepted'),
  ],
  [
    'verifyEmail',
    'otherMerchant',
    () => undefined,
    ({ data }) => expect(data!.verifyEmail).toMatchObject({ code: 'TOKEN_INVALID' }),
  ],
  [
    'completeLogin',
    'anonymous',
    () => undefined,
    ({ data }) => expect(data!.completeLogin).toMatchObject({ code: 'LOGIN_CHALLENGE_INVALID' }),
  ],
  [
    'blockPrepaidId',
    'operator',
    () => ({ input: { prepaidId: fixtures.cards[2], reason: 'access matrix' } }),
    ({ data }) => expect(data!.blockPrepaidId.__typename).toBe('PrepaidIdStatusSuccess'),
  ],
  [
    'unblockPrepaidId',
    'operator',
    () => ({ input: { prepaidId: fixtures.cards[2], reason: 'access matrix' } }),
    ({ data }) => expect(data!.unblockPrepaidId.__typename).toBe('PrepaidIdStatusSuccess'),
  ],
  [
    'freezeWallet',
    'operator',
    () => ({ input: { username: fixtures.otherMember.username, reason: 'access matrix' } }),
    ({ data }) => expect(data!.freezeWallet.__typename).toBe('WalletStatusSuccess'),
  ],
  [
    'unfreezeWallet',
    'operator',
    () => ({ input: { username: fixtures.otherMember.username, reason: 'access matrix' } }),
    ({ data }) => expect(data!.unfreezeWallet.__typename).toBe('WalletStatusSuccess'),
  ],
  [
    'adjustBalance',
    'operator',
    () => ({
      input: {
        prepaidId: fixtures.memberWalletId,
        amount: 10,
        direction: 'CREDIT',
        reason: 'access matrix',
        twoFactorCode: freshTotpCode(harness(), fixtures.operator.secret),
      },
    }),
    ({ data }) => expect(data!.adjustBalance.__typename).toBe('AdjustBalanceSuccess'),
  ],
  [
    'setMerchantCreditLimit',
    'operator',
    () => ({
      input: {
        merchantId: fixtures.merchantGlobalId,
        creditLimit: 1_000,
        twoFactorCode: freshTotpCode(harness(), fixtures.operator.secret),
      },
    }),
    ({ data }) =>
      expect(data!.setMerchantCreditLimit.__typename).toBe('SetMerchantCreditLimitSuccess'),
  ],
];

describe('allowed cells', () => {
  test.each(ALLOWED_SAMPLES.map((sample) => [`${sample[0]} as ${sample[1]}`, sample] as const))(
    '%s succeeds',
    async (_name, [operation, caller, variables, check]) => {
      expect(expected(operation, caller)).toBe(OK);

      const response = await request(operation, caller, variables());

      expect(response.errors).toBeUndefined();
      check(response);
    },
  );

  test('member ends a session and cancels a one-time ID of its own', async () => {
    const second = await signIn(harness(), fixtures.member.username, fixtures.member.password);
    const sessions = await harness().request('{ viewer { sessions { id current } } }', {}, second);
    const current = sessions.data!.viewer.sessions.find((session: any) => session.current);
    const created = await harness().request(
      'mutation { createOneTimePrepaidId(input: {}) { ... on OneTimePrepaidIdCreated { id } } }',
      {},
      second,
    );

    const oneTimeId = created.data!.createOneTimePrepaidId.id;
    const cancelled = await request('cancelOneTimePrepaidId', 'member', { id: oneTimeId });
    const ended = await request('endSession', 'member', { id: current.id });

    expect(cancelled.data!.cancelOneTimePrepaidId).toEqual({
      __typename: 'OneTimePrepaidIdCancelled',
      id: oneTimeId,
    });
    expect(ended.data!.endSession).toEqual({ endedSessions: 1 });
    expect((await harness().request('{ viewer { id } }', {}, second)).status).toBe(401);
  });

  test('member moves a card into the own wallet', async () => {
    const [card] = await harness().issueCards(1, 300);

    const moved = await request('transfer', 'member', { input: { sourcePrepaidId: card } });

    expect(moved.data!.transfer.__typename).toBe('TransferSuccess');
    expect(await harness().balanceOf(card!)).toBe(0);
  });

  test('merchant authorizes, captures and voids', async () => {
    const hold = async () => {
      const { data } = await harness().request(
        'mutation A($input: AuthorizeInput!) { authorize(input: $input) { __typename ... on AuthorizationSuccess { authorization { id } } } }',
        {
          input: {
            prepaidId: fixtures.memberWalletId,
            amount: 50,
            idempotencyKey: newKey('allowed-hold'),
            orderReference: 'allowed',
          },
        },
        fixtures.merchant.key,
      );
      expect(data!.authorize.__typename).toBe('AuthorizationSuccess');
      return data!.authorize.authorization.id as string;
    };

    const captured = await request('capture', 'merchant', {
      input: { authorizationId: await hold() },
    });
    const voided = await request('voidAuthorization', 'merchant', {
      input: { authorizationId: await hold() },
    });

    expect(captured.data!.capture.__typename).toBe('CaptureSuccess');
    expect(voided.data!.voidAuthorization.__typename).toBe('VoidSuccess');
  });

  test('subscribers get their own events only', async () => {
    const before = harness().services.hub.activeCount;
    const memberEvents = watch(
      harness().wsClient(fixtures.member.sessionToken),
      SUBSCRIPTIONS.balanceChanged!,
    );
    const otherMemberEvents = watch(
      harness().wsClient(fixtures.otherMember.sessionToken),
      SUBSCRIPTIONS.balanceChanged!,
    );
    const merchantEvents = watch(
      harness().wsClient(fixtures.merchant.key),
      SUBSCRIPTIONS.merchantTransactionPosted!,
    );
    const otherMerchantEvents = watch(
      harness().wsClient(fixtures.otherMerchant.key),
      SUBSCRIPTIONS.merchantTransactionPosted!,
    );
    await harness().waitForSubscribers(before + 4);

    const charged = await harness().request(
      CHARGE,
      chargeInput(fixtures.memberWalletId, 25),
      fixtures.merchant.key,
    );
    expect(charged.data!.charge.__typename).toBe('ChargeSuccess');
    await waitFor(
      () => memberEvents.events.length > 0 && merchantEvents.events.length > 0,
      5_000,
      'the charge events',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(memberEvents.events).toHaveLength(1);
    expect(merchantEvents.events).toHaveLength(1);
    expect(otherMemberEvents.events).toEqual([]);
    expect(otherMerchantEvents.events).toEqual([]);
    expect(otherMemberEvents.errors ?? otherMerchantEvents.errors).toBeUndefined();
  });
});
