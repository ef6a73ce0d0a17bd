import { randomBytes } from 'node:crypto';
import { sqlFor } from '../database/sql';
import { API_KEY_SCOPES } from '../merchants/api-key.entity';
import { findMemberByEmail } from '../members/member.queries';
import { TOKEN_PREFIXES } from '../members/tokens';
import { currentTotpCode } from '../members/totp';
import { groupDigits } from '../prepaid/prepaid-id';
import { openAdminRuntime, type AdminRuntime } from './admin-runtime';

/**
 * `npm run seed`: creates demo data for trying the API on a development
 * database and prints the credentials once. Every run creates new records
 * whose names end in a random suffix, so a second run adds another set.
 */

/** Face values of the demo cards, in points. The last card is moved into the member's wallet. */
const CARD_VALUES = [1_000, 3_000, 5_000] as const;
/**
 * Value recorded as the client IP address of the seed's member actions, in
 * the audit log and in the per-IP rate limits.
 * NOTE: registrationPerIp counts every run against this one key, so an 11th
 * run within an hour fails with RATE_LIMITED unless RATE_LIMITS raises it.
 */
const SEED_IP = 'seed';
/** Points that the printed charge command charges to the first card. */
const CHARGE_AMOUNT = 300;

interface SeededCard {
  prepaidId: string;
  faceValue: number;
  balance: number;
}

interface SeededData {
  suffix: string;
  merchant: { id: string; name: string };
  apiKey: string;
  cards: SeededCard[];
  member: {
    username: string;
    email: string;
    password: string;
    totpSecret: string;
    otpauthUri: string;
    recoveryCodes: string[];
    walletPrepaidId: string;
    walletBalance: number;
  };
}

type SeededMember = Omit<SeededData['member'], 'walletPrepaidId' | 'walletBalance'> & {
  id: string;
};

/**
 * Registers a member through the registration service, verifies the address
 * with the token from the outbox, and turns on TOTP with a code of the
 * current step.
 */
async function createMemberWithTotp(
  { orm, services }: AdminRuntime,
  suffix: string,
): Promise<SeededMember> {
  const username = `demo-${suffix}`;
  // example.com is reserved for documentation (RFC 2606), so a server with
  // SMTP_URL set sends the verification mail nowhere real.
  const email = `demo-${suffix}@example.com`;
  const password = randomBytes(12).toString('base64url');
  const registered = await services.registration.register(
    orm.em.fork(),
    { email, username, password },
    SEED_IP,
  );
  if (!registered.ok) {
    throw new Error(`registering ${username} failed: ${registered.reason}: ${registered.message}`);
  }

  const sql = sqlFor(orm.em.fork());
  const mails = await services.mail.listRecent(sql, { to: email, limit: 10 });
  const verification = mails.find((mail) => mail.kind === 'email_verification');
  const token = verification?.text.match(
    new RegExp(`${TOKEN_PREFIXES.emailVerification}[A-Za-z0-9_-]{43}`),
  )?.[0];
  // No verification mail means that the username or address was taken, which
  // a random suffix makes unlikely. The outbox then contains a notice instead.
  if (!token) throw new Error(`no verification mail to ${email} in the outbox; run the seed again`);
  if (!(await services.registration.verifyEmail(orm.em.fork(), token, SEED_IP))) {
    throw new Error(`verifying ${email} failed: the token from the outbox was rejected`);
  }
  const member = await findMemberByEmail(sql, email);
  if (!member) throw new Error(`member ${username} not found after registration`);

  const enrollment = await services.twoFactor.enroll(orm.em.fork(), member.id);
  if (!('secret' in enrollment)) throw new Error(`TOTP enrolment failed: ${enrollment.code}`);
  const recoveryCodes = await services.twoFactor.confirm(
    orm.em.fork(),
    member.id,
    currentTotpCode(enrollment.secret, services.clock.now()),
    SEED_IP,
  );
  if (!Array.isArray(recoveryCodes)) {
    throw new Error(`TOTP confirmation failed: ${recoveryCodes.code}`);
  }
  return {
    id: member.id,
    username,
    email,
    password,
    totpSecret: enrollment.secret,
    otpauthUri: enrollment.otpauthUri,
    recoveryCodes,
  };
}

/**
 * Creates the member, the merchant with its key and the cards, all named
 * with `suffix`, and moves the last card into the member's wallet. Each step
 * commits on its own, so a run that fails midway keeps the records that it
 * created before the failure.
 */
async function seedDemoData(runtime: AdminRuntime, suffix: string): Promise<SeededData> {
  const { orm, services } = runtime;
  // The member comes first because its registration is the step that a rate
  // limit can reject, and a rejected run then leaves nothing behind.
  const { id: memberId, ...member } = await createMemberWithTotp(runtime, suffix);

  const merchant = await services.merchants.create(orm.em.fork(), `Demo Shop ${suffix}`);
  const apiKey = await services.apiKeys.create(
    sqlFor(orm.em.fork()),
    merchant.id,
    `seed ${suffix}`,
    API_KEY_SCOPES,
  );

  const cards: SeededCard[] = [];
  for (const faceValue of CARD_VALUES) {
    const batch = await services.cards.issueBatch(orm.em.fork(), 1, faceValue, `seed ${suffix}`);
    cards.push({ prepaidId: batch.cards[0]!.digits, faceValue, balance: faceValue });
  }

  const walletCard = cards[cards.length - 1]!;
  const transfer = await services.transfers.transfer(
    orm.em.fork(),
    memberId,
    { sourcePrepaidId: walletCard.prepaidId, idempotencyKey: `seed-${suffix}` },
    SEED_IP,
  );
  if (!transfer.ok) throw new Error(`moving the card into the wallet failed: ${transfer.code}`);
  walletCard.balance -= transfer.transaction.amount;

  return {
    suffix,
    merchant: { id: merchant.id, name: merchant.name },
    apiKey: apiKey.key,
    cards,
    member: {
      ...member,
      walletPrepaidId: await services.wallets.revealPrepaidId(sqlFor(orm.em.fork()), memberId),
      walletBalance: transfer.transaction.amount,
    },
  };
}

/** Quotes a string for a POSIX shell: single quotes, with each ' written as '\''. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Formats a curl command that posts one GraphQL request, continued over several lines. */
function curlCommand(
  apiUrl: string,
  query: string,
  variables: Record<string, unknown>,
  bearer?: string,
): string {
  return [
    `curl -s ${shellQuote(apiUrl)}`,
    `  -H 'content-type: application/json'`,
    ...(bearer ? [`  -H ${shellQuote(`authorization: Bearer ${bearer}`)}`] : []),
    `  -d ${shellQuote(JSON.stringify({ query, variables }))}`,
  ].join(' \\\n');
}

function points(amount: number): string {
  return `${amount.toLocaleString('en-US')} points`;
}

/** Builds the text that the seed prints: the credentials, then commands to try them. */
function formatReport(data: SeededData, apiUrl: string): string[] {
  const { member } = data;
  const [firstCard] = data.cards;
  const chargeCommand = curlCommand(
    apiUrl,
    'mutation Charge($input: ChargeInput!) { charge(input: $input) { __typename ... on ChargeSuccess { balanceAfter replayed transaction { id amount } } ... on UserError { code message } } }',
    {
      input: {
        prepaidId: groupDigits(firstCard!.prepaidId),
        amount: CHARGE_AMOUNT,
        idempotencyKey: `seed-${data.suffix}-order-1`,
        orderReference: `seed-${data.suffix}-1`,
      },
    },
    data.apiKey,
  );
  const loginCommand = curlCommand(
    apiUrl,
    'mutation Login($input: LoginInput!) { login(input: $input) { __typename ... on TwoFactorRequired { challengeToken expiresAt } ... on LoginSuccess { sessionToken } ... on UserError { code message } } }',
    { input: { login: member.username, password: member.password } },
  );
  const completeCommand = curlCommand(
    apiUrl,
    'mutation Complete($input: CompleteLoginInput!) { completeLogin(input: $input) { __typename ... on LoginSuccess { sessionToken expiresAt } ... on UserError { code message } } }',
    { input: { challengeToken: '<challengeToken>', code: '<code>' } },
  );
  const viewerCommand = curlCommand(
    apiUrl,
    'query Wallet { viewer { username wallet { prepaidId balanceAvailable history(first: 5) { edges { node { kind amount merchantName } } } } } }',
    {},
    '<sessionToken>',
  );
  const examplePrefix = 'npx ts-node --transpile-only examples';

  return [
    `Demo data created. Its names end in this run's random suffix "${data.suffix}", so every run of npm run seed creates a new set.`,
    'Keep this output: the API key, the prepaid IDs, the password and the recovery codes are not shown again.',
    '',
    `Merchant "${data.merchant.name}" (id ${data.merchant.id})`,
    `  API key with the scopes ${API_KEY_SCOPES.join(', ')}:`,
    `    ${data.apiKey}`,
    '',
    'Prepaid cards:',
    ...data.cards.map((card) => {
      const moved =
        card.balance < card.faceValue
          ? `, after ${points(card.faceValue - card.balance)} moved into the member's wallet`
          : '';
      return `  ${groupDigits(card.prepaidId)}  ${points(card.balance)}${moved}`;
    }),
    '',
    `Member "${member.username}" (e-mail ${member.email}, verified)`,
    `  password: ${member.password}`,
    `  wallet prepaid ID: ${groupDigits(member.walletPrepaidId)} with ${points(member.walletBalance)}`,
    '  Two-factor authentication (TOTP) is on. Add it to an authenticator app with the secret or the URI:',
    `    secret: ${member.totpSecret}`,
    `    URI:    ${member.otpauthUri}`,
    '  Recovery codes, each accepted once in place of a TOTP code:',
    ...member.recoveryCodes.map((code) => `    ${code}`),
    '',
    `With the server running on the same database (npm start) at ${apiUrl}, in another terminal:`,
    '',
    `1. Charge ${points(CHARGE_AMOUNT)} to the first card. Sending it again returns the same transaction with replayed: true.`,
    '',
    chargeCommand,
    '',
    '2. Sign in as the member. The response is TwoFactorRequired with a challengeToken.',
    '',
    loginCommand,
    '',
    '3. Complete the sign-in: replace <challengeToken>, and <code> with the current code of the authenticator app or a recovery code.',
    '   The seed used the code of this 30-second step to turn two-factor authentication on, and each code is accepted once, so wait for the next one.',
    '',
    completeCommand,
    '',
    '4. Show the wallet and its history: replace <sessionToken> with the sessionToken of step 3.',
    '',
    viewerCommand,
    '',
    'The examples (see examples/README.md) take the same data:',
    '',
    `API_URL=${shellQuote(apiUrl)} API_KEY=${shellQuote(data.apiKey)} PREPAID_ID=${shellQuote(groupDigits(firstCard!.prepaidId))} ${examplePrefix}/merchant.ts`,
    `API_URL=${shellQuote(apiUrl)} API_KEY=${shellQuote(data.apiKey)} ${examplePrefix}/dashboard.ts`,
    `API_URL=${shellQuote(apiUrl)} SESSION_TOKEN='<sessionToken>' ${examplePrefix}/dashboard.ts`,
  ];
}

async function main(): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write(
      'error: npm run seed creates demo accounts and is disabled when NODE_ENV=production. ' +
        'Run it against a development database without NODE_ENV=production.\n',
    );
    process.exit(1);
  }

  let runtime: AdminRuntime | undefined;
  try {
    runtime = await openAdminRuntime();
    const apiUrl = process.env.API_URL ?? `http://127.0.0.1:${runtime.config.port}/graphql`;
    const data = await seedDemoData(runtime, randomBytes(3).toString('hex'));
    process.stdout.write(`${formatReport(data, apiUrl).join('\n')}\n`);
    await runtime.close();
    process.exit(0);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: seeding the demo data failed: ${message}\n`);
    if ((error as { extensions?: { code?: unknown } }).extensions?.code === 'RATE_LIMITED') {
      process.stderr.write(
        'Every run registers a member, and registrationPerIp allows 10 per hour by default. ' +
          `Wait, or raise the limit, such as RATE_LIMITS='{"registrationPerIp":{"points":100,"durationSeconds":3600}}'.\n`,
      );
    }
    await runtime?.close().catch(() => undefined);
    process.exit(1);
  }
}

void main();
