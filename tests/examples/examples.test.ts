import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import { LOGIN, newIdentity, REGISTER, VERIFY_EMAIL, walletPrepaidId } from '../support/members';

/**
 * Runs the commands that examples/README.md and `npm run seed` document,
 * as child processes against a test server. The server has no SMTP_URL, so
 * mails stay in the outbox, where member.ts and the seed read them.
 */
const harness = useHarness();

const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE_COMMAND = ['npx', 'ts-node', '--transpile-only'];

/** A child process with its output kept line by line. */
class Child {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  /** The signal that ended the process, if a signal did. */
  signal: NodeJS.Signals | null = null;

  constructor(readonly process: ChildProcess) {
    const collect = (stream: NodeJS.ReadableStream, lines: string[]) => {
      let buffer = '';
      stream.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const parts = buffer.split('\n');
        buffer = parts.pop()!;
        lines.push(...parts);
      });
      stream.on('end', () => {
        if (buffer) lines.push(buffer);
      });
    };
    collect(process.stdout!, this.stdout);
    collect(process.stderr!, this.stderr);
    this.exited = new Promise((resolve) =>
      process.on('close', (code, signal) => {
        this.signal = signal;
        resolve(code);
      }),
    );
  }

  /** Both streams, for failure messages. */
  get output(): string {
    return [...this.stdout, ...this.stderr.map((line) => `stderr: ${line}`)].join('\n');
  }

  async exitCode(timeoutMs = 30_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`process did not exit within ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async waitForLine(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    await waitFor(
      () => this.stdout.some((line) => pattern.test(line)),
      timeoutMs,
      `a line matching ${pattern} in:\n${this.output}`,
    );
    return this.stdout.find((line) => pattern.test(line))!;
  }
}

const children = new Set<Child>();

/**
 * Starts a command in the project folder with PATH, HOME and `environment`
 * only. The child leads a process group of its own, as a program started in
 * a terminal does, so that one signal reaches npx and the node process it runs.
 */
function start(command: string[], environment: Record<string, string>): Child {
  const child = new Child(
    spawn(command[0]!, command.slice(1), {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...environment },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
  );
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

/** Sends a signal to the child's process group, by the child's process id. */
function signalGroup(child: Child, signal: NodeJS.Signals | 0): void {
  process.kill(-child.process.pid!, signal);
}

function startExample(name: string, environment: Record<string, string>): Child {
  return start([...EXAMPLE_COMMAND, `examples/${name}`], environment);
}

afterAll(() => {
  // A failed test can leave an example running.
  for (const child of children) {
    try {
      signalGroup(child, 'SIGKILL');
    } catch (error) {
      // The group ended between its exit and the 'close' event.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
});

/** Runs a curl command that the seed printed, through bash as a newcomer pastes it. */
async function runCurl(command: string): Promise<any> {
  const { stdout } = await promisify(execFile)('bash', ['-c', command], { cwd: ROOT });
  return JSON.parse(stdout);
}

/** Extracts the curl commands from the seed's output, each with its continuation lines. */
function curlCommands(lines: string[]): string[] {
  const commands: string[] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    if (line.startsWith('curl ')) current = [];
    if (!current) continue;
    current.push(line);
    if (!line.endsWith('\\')) {
      commands.push(current.join('\n'));
      current = undefined;
    }
  }
  return commands;
}

/** Registers a member, verifies the address with the token from the outbox and signs in. */
async function signUpFromOutbox(): Promise<{ sessionToken: string; walletId: string }> {
  const identity = newIdentity('dash');
  const registered = await harness().request(REGISTER, { input: identity });
  expect(registered.data!.register.__typename).toBe('RequestAccepted');
  const mail = await harness()
    .sql()
    .one<{ body_text: string }>(
      `SELECT body_text FROM mail_outbox WHERE to_address = ? AND kind = 'email_verification'`,
      [identity.email],
    );
  const token = /ev_[A-Za-z0-9_-]{43}/.exec(mail!.body_text)![0];
  const verified = await harness().request(VERIFY_EMAIL, { token });
  expect(verified.data!.verifyEmail.__typename).toBe('EmailVerified');
  const login = await harness().request(LOGIN, {
    input: { login: identity.username, password: identity.password },
  });
  const sessionToken = login.data!.login.sessionToken as string;
  return { sessionToken, walletId: await walletPrepaidId(harness(), sessionToken) };
}

/**
 * Starts an HTTP proxy to the test server that spoils the first charge after
 * the server has carried it out. `drop` closes the connection without a
 * response, and `delay` sends the response after `delayMs`.
 */
async function startFaultyProxy(
  mode: 'drop' | 'delay',
  delayMs = 0,
): Promise<{ url: string; server: Server }> {
  let spoiled = false;
  const readBody = async (request: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString();
  };
  const server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const upstream = await fetch(harness().server.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: request.headers.authorization ?? '',
        },
        body,
      });
      const text = await upstream.text();
      if (!spoiled && body.includes('mutation Charge')) {
        spoiled = true;
        if (mode === 'drop') {
          request.socket.destroy();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      if (response.destroyed) return;
      response.writeHead(upstream.status, { 'content-type': 'application/json' });
      response.end(text);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/graphql`, server };
}

function closeProxy(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// member.ts waits up to 30 s for a TOTP code that was not used yet, so it
// starts first and runs while the other examples run.
let memberRun: Child;
beforeAll(() => {
  memberRun = startExample('member.ts', {
    API_URL: harness().server.url,
    DATABASE_URL: harness().config.databaseUrl!,
    // The compiled CLI that the global setup built. `npm run admin` would
    // compile into dist again while other test files run it.
    OUTBOX_COMMAND: 'node dist/src/admin/cli.js mail:outbox',
  });
});

describe('npm run seed', () => {
  const runSeed = (environment: Record<string, string> = {}) =>
    start(['node', 'dist/src/admin/seed.js'], {
      DATABASE_URL: harness().config.databaseUrl!,
      API_URL: harness().server.url,
      ...environment,
    });

  test('prints credentials that the printed commands use', async () => {
    const seed = runSeed();
    expect(await seed.exitCode()).toBe(0);
    const lines = seed.stdout;
    const output = lines.join('\n');
    const apiKey = /mk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/.exec(output)?.[0];
    expect(apiKey).toBeDefined();
    const cardLines = lines.filter((line) => /^ {2}\d{4} \d{4} \d{4} \d{4} {2}/.test(line));
    expect(cardLines).toHaveLength(3);
    expect(cardLines[0]).toMatch(/ 1,000 points$/);
    expect(cardLines[1]).toMatch(/ 3,000 points$/);
    expect(cardLines[2]).toMatch(/ 0 points, after 5,000 points moved into the member's wallet$/);
    expect(output).toMatch(/wallet prepaid ID: \d{4} \d{4} \d{4} \d{4} with 5,000 points/);
    expect(output).toMatch(/secret: [A-Z2-7]{32}$/m);
    expect(output).toMatch(/URI: +otpauth:\/\/totp\/.+secret=[A-Z2-7]{32}/);
    const recoveryCodes = lines.filter((line) => /^ {4}[A-Z0-9]{5}-[A-Z0-9]{5}$/.test(line));
    expect(recoveryCodes).toHaveLength(10);

    const [charge, login, complete, wallet] = curlCommands(lines);
    expect(charge).toContain(apiKey);
    const charged = await runCurl(charge!);
    expect(charged.data.charge).toMatchObject({
      __typename: 'ChargeSuccess',
      balanceAfter: 700,
      replayed: false,
    });
    const again = await runCurl(charge!);
    expect(again.data.charge).toMatchObject({ balanceAfter: 700, replayed: true });

    const signIn = await runCurl(login!);
    expect(signIn.data.login.__typename).toBe('TwoFactorRequired');
    const completed = await runCurl(
      complete!
        .replace('<challengeToken>', signIn.data.login.challengeToken)
        .replace('<code>', recoveryCodes[0]!.trim()),
    );
    expect(completed.data.completeLogin.__typename).toBe('LoginSuccess');
    const walletView = await runCurl(
      wallet!.replace('<sessionToken>', completed.data.completeLogin.sessionToken),
    );
    expect(walletView.data.viewer.wallet.balanceAvailable).toBe(5_000);
    expect(walletView.data.viewer.wallet.history.edges[0].node).toMatchObject({
      kind: 'TOP_UP',
      amount: 5_000,
    });
  });

  test('creates a new set on a second run', async () => {
    const first = runSeed();
    const second = runSeed();
    expect(await first.exitCode()).toBe(0);
    expect(await second.exitCode()).toBe(0);
    const suffix = (child: Child) => /suffix "([0-9a-f]{6})"/.exec(child.stdout[0] ?? '')?.[1];
    expect(suffix(first)).toBeDefined();
    expect(suffix(second)).toBeDefined();
    expect(suffix(first)).not.toBe(suffix(second));
  });

  test('rejects NODE_ENV=production', async () => {
    const before = await harness().count('SELECT count(*) FROM merchant');
    const seed = runSeed({ NODE_ENV: 'production' });
    expect(await seed.exitCode()).toBe(1);
    expect(seed.stderr.join('\n')).toContain('disabled when NODE_ENV=production');
    expect(seed.stdout).toEqual([]);
    expect(await harness().count('SELECT count(*) FROM merchant')).toBe(before);
  });
});

describe('examples/merchant.ts', () => {
  test.each([
    ['a dropped connection', 'drop', 0, /charge: attempt 1 failed \(network error: /],
    ['a timeout', 'delay', 2_000, /charge: attempt 1 failed \(timed out\)/],
  ] as const)('charges once after %s', async (_name, mode, delayMs, failure) => {
    const merchant = await harness().createMerchant('Retry Shop');
    const [card] = await harness().issueCards(1, 1_000);
    const proxy = await startFaultyProxy(mode, delayMs);
    try {
      const run = startExample('merchant.ts', {
        API_URL: proxy.url,
        API_KEY: merchant.key,
        PREPAID_ID: card!,
        REQUEST_TIMEOUT_MS: '1000',
      });
      expect(await run.exitCode()).toBe(0);
      const lines = run.stdout;
      const last4 = card!.slice(-4);
      expect(lines[0]).toBe(
        `balance inquiry: **** **** **** ${last4} is valid with 1000 points available`,
      );
      expect(lines).toContainEqual(expect.stringMatching(failure));
      expect(lines).toContainEqual(
        expect.stringMatching(/^charge: charged 300 points; balance after 700; transaction /),
      );
      expect(lines).toContainEqual(expect.stringContaining('(replayed: true)'));
      expect(lines).toContainEqual(
        expect.stringMatching(/^refund: refunded 100 points; 200 points of the charge can still/),
      );
      expect(lines[lines.length - 1]).toBe(
        `balance inquiry: **** **** **** ${last4} is valid with 800 points available`,
      );
    } finally {
      await closeProxy(proxy.server);
    }
    expect(await harness().balanceOf(card!)).toBe(800);
    expect(
      await harness().count(
        `SELECT count(*) FROM ledger_transaction WHERE merchant_id = ? AND kind = 'charge'`,
        [merchant.id],
      ),
    ).toBe(1);
  });

  test('explains each rejection', async () => {
    const merchant = await harness().createMerchant('Rejecting Shop');
    const [small, large] = await harness().issueCards(2, 100);
    await harness().fund(large!, 900);
    const base = { API_URL: harness().server.url, API_KEY: merchant.key };
    const cases: Array<[string, Record<string, string>, number, RegExp]> = [
      [
        'insufficient balance',
        { PREPAID_ID: small!, CHARGE_AMOUNT: '300' },
        1,
        /^charge rejected with INSUFFICIENT_BALANCE: only 100 points are available/,
      ],
      [
        'unknown prepaid ID',
        { PREPAID_ID: '1234 5678 9012 3456' },
        1,
        /^charge rejected with INVALID_PREPAID_ID: /,
      ],
      [
        'amount over the maximum',
        { PREPAID_ID: small!, CHARGE_AMOUNT: '1000001' },
        1,
        /^charge rejected with AMOUNT_LIMIT_EXCEEDED: a single charge may be at most 1000000 points/,
      ],
      [
        'refund over the charge',
        { PREPAID_ID: large!, CHARGE_AMOUNT: '300', REFUND_AMOUNT: '500' },
        1,
        /^refund rejected with REFUND_EXCEEDS_CHARGE: at most 300 points of the charge/,
      ],
      [
        'invalid key',
        { PREPAID_ID: small!, API_KEY: 'mk_invalid' },
        1,
        /^error: UNAUTHENTICATED: /,
      ],
      ['missing prepaid ID', {}, 2, /^error: PREPAID_ID is missing/],
    ];
    const runs = cases.map(([, environment]) =>
      startExample('merchant.ts', { ...base, ...environment }),
    );
    for (const [index, [name, , code, expected]] of cases.entries()) {
      const run = runs[index]!;
      const exitCode = await run.exitCode();
      expect({ name, exitCode }).toEqual({ name, exitCode: code });
      expect({ name, lines: [...run.stdout, ...run.stderr] }).toEqual({
        name,
        lines: expect.arrayContaining([expect.stringMatching(expected)]),
      });
    }
    expect(await harness().balanceOf(small!)).toBe(100);
    // The refund case charged 300 before its refund was rejected.
    expect(await harness().balanceOf(large!)).toBe(700);
  });
});

describe('examples/dashboard.ts', () => {
  test('prints the charge on both subscriptions', async () => {
    const merchant = await harness().createMerchant('Dashboard Shop');
    const member = await signUpFromOutbox();
    await harness().fund(member.walletId, 1_000);
    const subscribersBefore = harness().services.hub.activeCount;

    const wallet = startExample('dashboard.ts', {
      API_URL: harness().server.url,
      SESSION_TOKEN: member.sessionToken,
      MAX_EVENTS: '1',
    });
    const shop = startExample('dashboard.ts', {
      API_URL: harness().server.url,
      API_KEY: merchant.key,
      MAX_EVENTS: '1',
    });
    await wallet.waitForLine(/^connected to ws:.* waiting for balanceChanged events/);
    await shop.waitForLine(/^connected to ws:.* waiting for merchantTransactionPosted events/);
    await harness().waitForSubscribers(subscribersBefore + 2);

    const { data } = await harness().request(
      CHARGE,
      chargeInput(member.walletId, 300, { orderReference: 'dash-1' }),
      merchant.key,
    );
    expect(data!.charge.__typename).toBe('ChargeSuccess');

    expect(await wallet.exitCode(10_000)).toBe(0);
    expect(await shop.exitCode(10_000)).toBe(0);
    expect(wallet.stdout[1]).toMatch(
      /^\S+Z {2}CHARGE {2}-300 {2}order dash-1 {2}at Dashboard Shop {2}available 700 {2}held 0$/,
    );
    expect(shop.stdout[1]).toMatch(
      /^\S+Z {2}CHARGE {2}\+300 {2}order dash-1 {2}at Dashboard Shop {2}settlement balance 300$/,
    );
    expect(wallet.stdout).toHaveLength(2);
    expect(shop.stdout).toHaveLength(2);
  });

  test('stops on Ctrl-C', async () => {
    const merchant = await harness().createMerchant('Interrupted Shop');
    const dashboard = startExample('dashboard.ts', {
      API_URL: harness().server.url,
      API_KEY: merchant.key,
    });
    await dashboard.waitForLine(/^connected to /);
    // Ctrl-C in a terminal signals the whole process group: npx and node.
    signalGroup(dashboard, 'SIGINT');
    await dashboard.exitCode(10_000);
    expect(dashboard.stdout).toContain('stopped after 0 events');
    // npx ends itself with the signal after its child has exited, as after
    // Ctrl-C in a terminal. The example printed its last line before that.
    expect(dashboard.signal).toBe('SIGINT');
    expect(() => signalGroup(dashboard, 0)).toThrow(/ESRCH/);
  });

  test('exits when the session ends', async () => {
    const member = await signUpFromOutbox();
    const subscribersBefore = harness().services.hub.activeCount;
    const dashboard = startExample('dashboard.ts', {
      API_URL: harness().server.url,
      SESSION_TOKEN: member.sessionToken,
    });
    await dashboard.waitForLine(/^connected to /);
    await harness().waitForSubscribers(subscribersBefore + 1);

    const { data } = await harness().request(
      'mutation { logout { endedSessions } }',
      {},
      member.sessionToken,
    );
    expect(data!.logout.endedSessions).toBe(1);

    expect(await dashboard.exitCode(10_000)).toBe(1);
    expect(dashboard.stderr).toContain(
      'error: the server ended the subscription: the session ended or the API key was revoked',
    );
  });

  test('rejects an invalid API key', async () => {
    const dashboard = startExample('dashboard.ts', {
      API_URL: harness().server.url,
      API_KEY: 'mk_invalid',
    });
    expect(await dashboard.exitCode(10_000)).toBe(1);
    expect(dashboard.stderr).toContainEqual(
      expect.stringContaining('the server rejected the credentials (close code 4403)'),
    );
  });
});

describe('examples/member.ts', () => {
  test('signs up and signs in with TOTP', async () => {
    expect(await memberRun.exitCode(50_000)).toBe(0);
    const lines = memberRun.stdout;
    const username = /^member: username (example-[0-9a-f]{6}),/.exec(lines[0] ?? '')?.[1];
    expect(username).toBeDefined();
    const steps = [
      /^register: accepted/,
      /^verifyEmail: the address is verified/,
      /^login: signed in with the password alone$/,
      /^enrollTotp: secret [A-Z2-7]{32}$/,
      /^confirmTotp: two-factor authentication is on; recovery codes( [A-Z0-9]{5}-[A-Z0-9]{5}){10}$/,
      /^waiting \d+ s for the next TOTP code$/,
      /^login: the password is right, and the server asks for a code/,
      /^completeLogin: signed in with a TOTP code/,
      /^wallet: prepaid ID \*{4} \*{4} \*{4} \d{4}, ACTIVE, 0 points available, 0 held, can pay$/,
    ];
    for (const step of steps) expect(lines).toContainEqual(expect.stringMatching(step));
    const positions = steps.map((step) => lines.findIndex((line) => step.test(line)));
    expect(positions).toEqual([...positions].sort((left, right) => left - right));

    const sessionToken = /SESSION_TOKEN of examples\/dashboard\.ts: (ms_\S+)$/m.exec(
      lines.join('\n'),
    )?.[1];
    const { data } = await harness().request(
      '{ viewer { username twoFactorEnabled emailVerified } }',
      {},
      sessionToken,
    );
    expect(data!.viewer).toEqual({ username, twoFactorEnabled: true, emailVerified: true });
  });
});
