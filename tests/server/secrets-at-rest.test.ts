/**
 * After a run of real operations, no bearer secret, password or full prepaid
 * ID may be readable in the database. Every table is dumped as JSON text, and
 * every bytea value also as UTF-8, Latin-1 and raw bytes. The dump is then
 * searched for each secret that the run handed out.
 */
import {
  apiKeyPrefix,
  apiKeySecret,
  CHARGE,
  chargeInput,
  REFUND,
  newKey,
  useHarness,
  waitFor,
} from '../support/harness';
import {
  COMPLETE_LOGIN,
  enableTwoFactor,
  freshTotpCode,
  LOGIN,
  newIdentity,
  REGISTER,
  signIn,
  signUp,
  tokenFromMail,
  VERIFY_EMAIL,
} from '../support/members';

const LIMIT = { points: 100_000, durationSeconds: 3_600 };

// The run requests more mails per address than the default limit allows.
const harness = useHarness(
  {
    RATE_LIMITS: JSON.stringify({
      loginPerIp: LIMIT,
      registrationPerIp: LIMIT,
      mailPerAddress: LIMIT,
      codePerAccount: LIMIT,
    }),
  },
  { smtp: true },
);

interface Secret {
  kind: string;
  label: string;
  value: string;
}

interface RawSecret {
  kind: string;
  label: string;
  bytes: Buffer;
}

const secrets: Secret[] = [];
const rawSecrets: RawSecret[] = [];

function keep(kind: string, label: string, ...values: string[]): void {
  for (const value of values) secrets.push({ kind, label, value });
}

/** Keeps a token in full and without its prefix, such as `ms_`. */
function keepToken(kind: string, label: string, token: string): void {
  keep(kind, label, token, token.slice(3));
}

function keepPrepaidId(label: string, digits: string): void {
  keep(
    'prepaid ID',
    label,
    digits,
    digits.replace(/(\d{4})(?=\d)/g, '$1 '),
    digits.replace(/(\d{4})(?=\d)/g, '$1-'),
  );
}

function keepTotpSecret(label: string, secret: string): void {
  keep('TOTP secret', label, secret);
  rawSecrets.push({
    kind: 'TOTP secret',
    label: `${label} (raw bytes)`,
    bytes: base32Decode(secret),
  });
}

function keepRecoveryCodes(label: string, codes: string[]): void {
  for (const code of codes) keep('recovery code', label, code, code.replace('-', ''));
}

/** Decodes RFC 4648 base32 without padding, as authenticator apps read TOTP secrets. */
function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const character of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(character);
    if (value < 0) throw new Error(`invalid base32 character "${character}" in a TOTP secret`);
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

const REVEAL = `
  mutation Reveal($code: String) {
    revealPrepaidId(twoFactorCode: $code) { __typename ... on PrepaidIdRevealed { prepaidId } ... on UserError { code } }
  }`;

const ROTATE = `
  mutation Rotate($code: String) {
    rotatePrepaidId(twoFactorCode: $code) { __typename ... on PrepaidIdRotated { prepaidId } ... on UserError { code } }
  }`;

const ONE_TIME = `
  mutation OneTime($input: CreateOneTimePrepaidIdInput!) {
    createOneTimePrepaidId(input: $input) { __typename ... on OneTimePrepaidIdCreated { prepaidId } }
  }`;

/** Throws unless the response has data of the expected type name at `field`. */
function expectType(
  response: { data?: any; errors?: unknown },
  field: string,
  typeName: string,
): any {
  const value = response.data?.[field];
  if (value?.__typename !== typeName) {
    throw new Error(`${field} returned ${JSON.stringify(response)}, expected ${typeName}`);
  }
  return value;
}

/** Signs in with the password and a TOTP code, and keeps the challenge and session tokens. */
async function signInWithCode(
  login: string,
  password: string,
  secret: string,
  label: string,
): Promise<string> {
  const challenge = expectType(
    await harness().request(LOGIN, { input: { login, password } }),
    'login',
    'TwoFactorRequired',
  );
  keepToken('challenge token', `${label} challenge`, challenge.challengeToken);
  const completed = expectType(
    await harness().request(COMPLETE_LOGIN, {
      input: { challengeToken: challenge.challengeToken, code: freshTotpCode(harness(), secret) },
    }),
    'completeLogin',
    'LoginSuccess',
  );
  keepToken('session token', `${label} session`, completed.sessionToken);
  return completed.sessionToken;
}

/** Runs the operations that hand out every kind of secret, and keeps each secret. */
async function runOperations(): Promise<void> {
  // Registration and e-mail verification.
  const identity = newIdentity('secret');
  keep('password', 'first password', identity.password);
  expectType(await harness().request(REGISTER, { input: identity }), 'register', 'RequestAccepted');
  const verification = await tokenFromMail(harness(), identity.email, 'ev_');
  keepToken('verification token', 'used verification token', verification);
  expectType(
    await harness().request(VERIFY_EMAIL, { token: verification }),
    'verifyEmail',
    'EmailVerified',
  );

  // A second member who never verifies keeps two unused verification tokens.
  const pending = newIdentity('pending');
  keep('password', 'pending member password', pending.password);
  expectType(await harness().request(REGISTER, { input: pending }), 'register', 'RequestAccepted');
  keepToken(
    'verification token',
    'unused verification token',
    await tokenFromMail(harness(), pending.email, 'ev_'),
  );
  const beforeResend = harness().smtp.mails.length;
  await harness().request(
    'mutation R($email: String!) { resendVerification(email: $email) { message } }',
    {
      email: pending.email,
    },
  );
  keepToken(
    'verification token',
    'resent verification token',
    await tokenFromMail(harness(), pending.email, 'ev_', beforeResend),
  );

  // Sessions, then TOTP enrolment with recovery codes.
  const first = await signIn(harness(), identity.username, identity.password);
  const second = await signIn(harness(), identity.email, identity.password);
  keepToken('session token', 'first session', first);
  keepToken('session token', 'second session', second);
  const { secret, recoveryCodes } = await enableTwoFactor(harness(), first);
  keepTotpSecret('member TOTP secret', secret);
  keepRecoveryCodes('member recovery code', recoveryCodes);

  // A sign-in completed with a recovery code, and one with a TOTP code.
  const challenge = expectType(
    await harness().request(LOGIN, {
      input: { login: identity.username, password: identity.password },
    }),
    'login',
    'TwoFactorRequired',
  );
  keepToken('challenge token', 'recovery challenge', challenge.challengeToken);
  const recovered = expectType(
    await harness().request(COMPLETE_LOGIN, {
      input: { challengeToken: challenge.challengeToken, code: recoveryCodes[0] },
    }),
    'completeLogin',
    'LoginSuccess',
  );
  keepToken('session token', 'recovery session', recovered.sessionToken);
  await signInWithCode(identity.username, identity.password, secret, 'TOTP');

  // A password reset that is used, and one that is left unused.
  const beforeReset = harness().smtp.mails.length;
  await harness().request(
    'mutation R($email: String!) { requestPasswordReset(email: $email) { message } }',
    {
      email: identity.email,
    },
  );
  const reset = await tokenFromMail(harness(), identity.email, 'pr_', beforeReset);
  keepToken('reset token', 'used reset token', reset);
  const resetPassword = `${identity.password} after reset`;
  keep('password', 'password after reset', resetPassword);
  expectType(
    await harness().request(
      'mutation R($input: ResetPasswordInput!) { resetPassword(input: $input) { __typename } }',
      { input: { token: reset, newPassword: resetPassword } },
    ),
    'resetPassword',
    'PasswordChanged',
  );
  const beforeSecondReset = harness().smtp.mails.length;
  await harness().request(
    'mutation R($email: String!) { requestPasswordReset(email: $email) { message } }',
    {
      email: identity.email,
    },
  );
  keepToken(
    'reset token',
    'unused reset token',
    await tokenFromMail(harness(), identity.email, 'pr_', beforeSecondReset),
  );
  await harness().request(
    'mutation R($email: String!) { requestUsernameReminder(email: $email) { message } }',
    {
      email: identity.email,
    },
  );

  // A password change, then a session with the newest password.
  const afterReset = await signInWithCode(identity.username, resetPassword, secret, 'after reset');
  const changedPassword = `${identity.password} changed again`;
  keep('password', 'changed password', changedPassword);
  expectType(
    await harness().request(
      'mutation C($input: ChangePasswordInput!) { changePassword(input: $input) { __typename ... on UserError { code } } }',
      {
        input: {
          currentPassword: resetPassword,
          newPassword: changedPassword,
          twoFactorCode: freshTotpCode(harness(), secret),
        },
      },
      afterReset,
    ),
    'changePassword',
    'PasswordChanged',
  );
  const session = await signInWithCode(
    identity.username,
    changedPassword,
    secret,
    'changed password',
  );

  // The wallet's prepaid ID, revealed and then rotated.
  const walletId = expectType(
    await harness().request(REVEAL, { code: freshTotpCode(harness(), secret) }, session),
    'revealPrepaidId',
    'PrepaidIdRevealed',
  ).prepaidId as string;
  keepPrepaidId('first wallet prepaid ID', walletId);
  await harness().fund(walletId, 5_000);
  const rotatedId = expectType(
    await harness().request(ROTATE, { code: freshTotpCode(harness(), secret) }, session),
    'rotatePrepaidId',
    'PrepaidIdRotated',
  ).prepaidId as string;
  keepPrepaidId('rotated wallet prepaid ID', rotatedId);

  // One-time prepaid IDs: one left active, one spent by a charge.
  const activeOneTime = expectType(
    await harness().request(ONE_TIME, { input: { amountCap: 500 } }, session),
    'createOneTimePrepaidId',
    'OneTimePrepaidIdCreated',
  ).prepaidId as string;
  keepPrepaidId('active one-time prepaid ID', activeOneTime);
  const spentOneTime = expectType(
    await harness().request(ONE_TIME, { input: {} }, session),
    'createOneTimePrepaidId',
    'OneTimePrepaidIdCreated',
  ).prepaidId as string;
  keepPrepaidId('spent one-time prepaid ID', spentOneTime);

  // Merchants' API keys: one in use, one revoked.
  const merchant = await harness().createMerchant('Secret Shop');
  keep('API key', 'merchant API key', merchant.key, apiKeySecret(merchant.key));
  const revoked = await harness().services.apiKeys.create(harness().sql(), merchant.id, 'revoked');
  keep('API key', 'revoked API key', revoked.key, apiKeySecret(revoked.key));
  await harness().services.apiKeys.revoke(harness().sql(), revoked.prefix);

  // Cards, and money moving through every kind of prepaid ID.
  const cards = await harness().issueCards(3, 1_000);
  cards.forEach((card, index) => keepPrepaidId(`card ${index + 1}`, card));
  expectType(
    await harness().request(
      'mutation T($input: TransferInput!) { transfer(input: $input) { __typename ... on UserError { code } } }',
      { input: { sourcePrepaidId: cards[0], amount: 400 } },
      session,
    ),
    'transfer',
    'TransferSuccess',
  );
  const charges = [
    await harness().request(
      CHARGE,
      chargeInput(cards[1]!, 300, { metadata: { basket: 3 } }),
      merchant.key,
    ),
    await harness().request(CHARGE, chargeInput(rotatedId, 200), merchant.key),
    await harness().request(CHARGE, chargeInput(spentOneTime, 100), merchant.key),
  ];
  for (const charged of charges) expectType(charged, 'charge', 'ChargeSuccess');
  expectType(
    await harness().request(
      REFUND,
      {
        input: {
          transactionId: charges[0]!.data!.charge.transaction.id,
          amount: 50,
          idempotencyKey: newKey(),
        },
      },
      merchant.key,
    ),
    'refund',
    'RefundSuccess',
  );
  const balance = await harness().request(
    'query B($id: String!) { prepaidBalance(prepaidId: $id) { valid } }',
    { id: cards[2] },
    merchant.key,
  );
  expect(balance.data!.prepaidBalance.valid).toBe(true);

  // An operator blocks and unblocks a card, which the audit log records.
  const operator = await signUp(harness(), 'secretop');
  keep('password', 'operator password', operator.password);
  keepToken('session token', 'operator session', operator.sessionToken);
  const operatorTwoFactor = await enableTwoFactor(harness(), operator.sessionToken);
  keepTotpSecret('operator TOTP secret', operatorTwoFactor.secret);
  keepRecoveryCodes('operator recovery code', operatorTwoFactor.recoveryCodes);
  await harness()
    .sql()
    .query(`UPDATE member SET role = 'operator' WHERE username = ?`, [operator.username]);
  for (const mutation of ['blockPrepaidId', 'unblockPrepaidId']) {
    const changed = await harness().request(
      `mutation S($input: PrepaidIdStatusChangeInput!) { ${mutation}(input: $input) { __typename } }`,
      { input: { prepaidId: cards[2], reason: 'secrets at rest' } },
      operator.sessionToken,
    );
    expectType(changed, mutation, 'PrepaidIdStatusSuccess');
  }

  // One session ends.
  await harness().request('mutation { logout { endedSessions } }', {}, second);

  positives.push(identity.email, apiKeyPrefix(merchant.key), walletId.slice(-4));
}

/** Values that are stored in clear on purpose, which the dump must contain. */
const positives: string[] = [];

interface Dump {
  /** `row_to_json` of every row, by table. */
  rows: Array<{ table: string; text: string }>;
  /** Every non-null bytea value, by table and column. */
  blobs: Array<{ table: string; column: string; bytes: Buffer }>;
  /** Text, bytea and JSON columns, as `table.column`. */
  columns: string[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Reads every row of every table of the harness's database. */
async function dumpDatabase(): Promise<Dump> {
  const sql = harness().sql();
  const tables = await sql.query<{ table_schema: string; table_name: string }>(
    `SELECT table_schema, table_name FROM information_schema.tables
      WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'
        AND table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY table_schema, table_name`,
  );
  const columns = await sql.query<{
    table_schema: string;
    table_name: string;
    column_name: string;
    data_type: string;
    udt_name: string;
  }>(
    `SELECT table_schema, table_name, column_name, data_type, udt_name FROM information_schema.columns
      WHERE table_catalog = current_database()
        AND table_schema NOT IN ('pg_catalog', 'information_schema')
        AND (data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb')
             OR udt_name IN ('_text', '_varchar'))
      ORDER BY table_schema, table_name, column_name`,
  );
  const dump: Dump = { rows: [], blobs: [], columns: [] };
  for (const { table_schema: schema, table_name: name } of tables) {
    if (!IDENTIFIER.test(schema) || !IDENTIFIER.test(name))
      throw new Error(`table name ${schema}.${name} is not a plain identifier`);
    const rows = await sql.query<{ row: string }>(
      `SELECT row_to_json(t)::text AS row FROM "${schema}"."${name}" t`,
    );
    for (const { row } of rows) dump.rows.push({ table: name, text: row });
  }
  for (const column of columns) {
    const { table_schema: schema, table_name: table, column_name: name } = column;
    dump.columns.push(`${table}.${name}`);
    if (column.data_type !== 'bytea') continue;
    if (!IDENTIFIER.test(name))
      throw new Error(`column name ${table}.${name} is not a plain identifier`);
    const values = await sql.query<{ value: Buffer }>(
      `SELECT "${name}" AS value FROM "${schema}"."${table}" WHERE "${name}" IS NOT NULL`,
    );
    for (const { value } of values) dump.blobs.push({ table, column: name, bytes: value });
  }
  return dump;
}

/** Lists where a text value occurs: in a row's JSON, as the hex of its bytes in a bytea, or in a bytea's decoded text. */
function placesOf(dump: Dump, value: string): string[] {
  const hex = Buffer.from(value).toString('hex');
  const places = new Set<string>();
  for (const { table, text } of dump.rows) {
    if (text.includes(value)) places.add(`${table} (JSON text)`);
    if (text.toLowerCase().includes(hex)) places.add(`${table} (hex of a bytea)`);
  }
  for (const { table, column, bytes } of dump.blobs) {
    if (bytes.toString('utf8').includes(value)) places.add(`${table}.${column} (bytea as UTF-8)`);
    if (bytes.toString('latin1').includes(value))
      places.add(`${table}.${column} (bytea as Latin-1)`);
  }
  return [...places];
}

/** Lists where raw bytes occur: as hex in a row's JSON, or inside a bytea value. */
function placesOfBytes(dump: Dump, bytes: Buffer): string[] {
  const hex = bytes.toString('hex');
  const places = new Set<string>();
  for (const { table, text } of dump.rows) {
    if (text.toLowerCase().includes(hex)) places.add(`${table} (hex)`);
  }
  for (const { table, column, bytes: stored } of dump.blobs) {
    if (stored.includes(bytes)) places.add(`${table}.${column} (raw bytes)`);
  }
  return [...places];
}

let dump: Dump;

beforeAll(async () => {
  await runOperations();
  // With SMTP, the outbox replaces the body of a sent mail, which contains its token.
  await waitFor(
    async () =>
      (await harness().count(`SELECT count(*) FROM mail_outbox WHERE status <> 'sent'`)) === 0,
    15_000,
    'every mail to be sent',
  );
  dump = await dumpDatabase();
}, 60_000);

describe('secrets at rest', () => {
  test('run hands out every secret kind', () => {
    const kinds = new Set(secrets.map((secret) => secret.kind));

    expect([...kinds].sort()).toEqual([
      'API key',
      'TOTP secret',
      'challenge token',
      'password',
      'prepaid ID',
      'recovery code',
      'reset token',
      'session token',
      'verification token',
    ]);
    expect(rawSecrets).toHaveLength(2);
  });

  test('dump reads every table', () => {
    const tables = new Set(dump.rows.map((row) => row.table));

    for (const table of [
      'member',
      'member_session',
      'member_token',
      'login_challenge',
      'recovery_code',
      'mail_outbox',
      'audit_log',
      'prepaid_id',
      'merchant_api_key',
      'ledger_transaction',
      'ledger_event',
    ]) {
      expect({ table, dumped: tables.has(table) }).toEqual({ table, dumped: true });
    }
    expect(dump.columns).toEqual(
      expect.arrayContaining([
        'member.totp_secret',
        'prepaid_id.encrypted_value',
        'mail_outbox.body_text',
      ]),
    );
    for (const value of positives) {
      expect({ value, found: placesOf(dump, value).length > 0 }).toEqual({ value, found: true });
    }
  });

  test('mail outbox keeps no body after sending', async () => {
    const mails = await harness()
      .sql()
      .query<{ kind: string; status: string; body_text: string }>(
        'SELECT kind, status, body_text FROM mail_outbox ORDER BY id',
      );

    expect(mails.length).toBeGreaterThanOrEqual(6);
    for (const mail of mails) {
      expect(mail).toEqual({
        kind: mail.kind,
        status: 'sent',
        body_text: '[removed after sending]',
      });
    }
  });

  test.each([
    'prepaid ID',
    'session token',
    'challenge token',
    'API key',
    'TOTP secret',
    'recovery code',
    'verification token',
    'reset token',
    'password',
  ])('no %s is stored in clear', (kind) => {
    const found = secrets
      .filter((secret) => secret.kind === kind)
      .map((secret) => ({ secret: secret.label, places: placesOf(dump, secret.value) }))
      .filter((result) => result.places.length > 0);
    const foundRaw = rawSecrets
      .filter((secret) => secret.kind === kind)
      .map((secret) => ({ secret: secret.label, places: placesOfBytes(dump, secret.bytes) }))
      .filter((result) => result.places.length > 0);

    expect(secrets.filter((secret) => secret.kind === kind).length).toBeGreaterThan(0);
    expect([...found, ...foundRaw]).toEqual([]);
  });
});
