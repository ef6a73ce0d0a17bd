import net from 'node:net';
import { Client } from 'pg';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Harness, CHARGE, chargeInput, waitFor } from '../support/harness';
import { ServerProcess } from '../support/server-process';
import { newIdentity, REGISTER } from '../support/members';

const SERVER = 'dist/src/main.js';

describe('server process', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await Harness.start();
  });
  afterAll(async () => {
    await harness.stop();
  });

  test('names the invalid variable and exits 1', async () => {
    const server = ServerProcess.start(SERVER, {
      PORT: 'abc',
      PREPAID_ID_HMAC_KEY: 'short',
      DATABASE_URL: harness.config.databaseUrl,
    });

    expect(await server.wait()).toBe(1);
    expect(server.lines).toHaveLength(1);
    expect(server.lines[0]).toMatch(/^Invalid configuration: /);
    expect(server.lines[0]).toContain('PORT: expected a TCP port from 0 to 65535, got "abc"');
    expect(server.lines[0]).toContain('PREPAID_ID_HMAC_KEY: expected 64 hexadecimal characters');
  });

  test('reports an unreachable database in one line', async () => {
    const server = ServerProcess.start(SERVER, {
      DATABASE_URL: 'postgres://wallet:secret-password@127.0.0.1:1/wallet',
      PORT: '0',
    });

    expect(await server.wait()).toBe(1);
    const fatal = server.logs.filter((log) => log.level === 60);
    expect(fatal).toHaveLength(1);
    expect(String(fatal[0]!.reason)).toMatch(
      /^Cannot connect to the database at postgres:\/\/wallet:\*\*\*@127\.0\.0\.1:1\/wallet \(ECONNREFUSED/,
    );
    expect(server.lines.join('\n')).not.toContain('secret-password');
    expect(server.lines.join('\n')).not.toMatch(/\n\s+at /);
  });

  test('finishes an in-flight charge on SIGTERM, closes subscriptions and exits 0', async () => {
    const server = ServerProcess.start(SERVER, {
      DATABASE_URL: harness.config.databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    const base = await server.waitForListening();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready' });

    const merchant = await harness.createMerchant();
    const [card] = await harness.issueCards(1, 1_000);
    const found = await harness.services.prepaidIds.resolve(harness.sql(), card!);

    const subscriber = createClient({
      url: `${base.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${merchant.key}` },
      retryAttempts: 0,
    });
    let completed = false;
    subscriber.subscribe(
      { query: 'subscription { merchantTransactionPosted { transaction { id } } }' },
      {
        next: () => undefined,
        error: () => (completed = true),
        complete: () => (completed = true),
      },
    );

    // Hold the card's ledger lock so that the charge is still running when
    // the signal arrives.
    const blocker = new Client({ connectionString: harness.config.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT pg_advisory_xact_lock(7340001, $1::integer)', [
      found!.ledgerAccountId,
    ]);
    const charge = fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${merchant.key}` },
      body: JSON.stringify({ query: CHARGE, variables: chargeInput(card!, 400) }),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    server.signal('SIGTERM');
    await server.waitForLog('shutdown requested');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await blocker.query('COMMIT');
    await blocker.end();

    const response = await charge;
    const body = (await response.json()) as {
      data: { charge: { __typename: string; balanceAfter: number } };
    };
    expect(body.data.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 600 });
    expect(await server.wait()).toBe(0);
    expect(completed).toBe(true);
    expect(server.logs.map((log) => log.msg)).toEqual(
      expect.arrayContaining(['server stopped', 'process exiting']),
    );
    await subscriber.dispose();
    await harness.expectBalanced();
  });

  // The drain ends a kept-alive connection after its current response, but
  // a request already sent on it still ran and committed with no reply.
  test('request behind an in-flight one during shutdown does not run', async () => {
    const server = ServerProcess.start(SERVER, {
      DATABASE_URL: harness.config.databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    const base = new URL(await server.waitForListening());
    const merchant = await harness.createMerchant();
    const [card] = await harness.issueCards(1, 1_000);
    const found = await harness.services.prepaidIds.resolve(harness.sql(), card!);
    const blocker = new Client({ connectionString: harness.config.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT pg_advisory_xact_lock(7340001, $1::integer)', [
      found!.ledgerAccountId,
    ]);

    // The first charge waits for the lock. The second arrives on the same
    // connection after the signal, as a client's next request would.
    const socket = net.connect(Number(base.port), base.hostname);
    let received = '';
    socket.on('data', (chunk) => (received += String(chunk)));
    socket.on('error', () => undefined);
    const closed = new Promise((resolve) => socket.on('close', resolve));
    const request = (amount: number) => {
      const body = JSON.stringify({ query: CHARGE, variables: chargeInput(card!, amount) });
      return [
        'POST /graphql HTTP/1.1',
        `Host: ${base.host}`,
        'Content-Type: application/json',
        `Authorization: Bearer ${merchant.key}`,
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n');
    };
    socket.write(request(100));
    await new Promise((resolve) => setTimeout(resolve, 300));
    server.signal('SIGTERM');
    await server.waitForLog('shutdown requested');
    socket.write(request(200));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await blocker.query('COMMIT');
    await blocker.end();
    await closed;

    expect(await server.wait()).toBe(0);
    expect(received).toContain('"balanceAfter":900');
    expect(await harness.balanceOf(card!)).toBe(900);
    await harness.expectBalanced();
  });

  test('treats the double SIGINT of Ctrl-C under npm as one', async () => {
    const server = ServerProcess.start(SERVER, {
      DATABASE_URL: harness.config.databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    await server.waitForListening();

    // The terminal sends SIGINT to the process group, and npm forwards it again.
    server.signal('SIGINT');
    server.signal('SIGINT');

    expect(await server.wait()).toBe(0);
    const messages = server.logs.map((log) => log.msg);
    expect(messages).toContain('server stopped');
    expect(messages).not.toContain('second stop request; exiting without waiting');
  });

  // A send to an SMTP server that never replied held the shutdown past its
  // timeout, and the process exited 1 with its embedded Postgres still running.
  test('SIGTERM during a hung mail send exits 0', async () => {
    const sockets: net.Socket[] = [];
    // It greets, then never replies, so only the 30-second socket timeout would end the send.
    const silentSmtp = net.createServer((socket) => {
      sockets.push(socket);
      socket.write('220 silent.test ESMTP\r\n');
    });
    await new Promise<void>((resolve) => silentSmtp.listen(0, '127.0.0.1', resolve));
    const { port } = silentSmtp.address() as net.AddressInfo;
    try {
      const server = ServerProcess.start(SERVER, {
        DATABASE_URL: harness.config.databaseUrl,
        PORT: '0',
        LOG_LEVEL: 'info',
        SMTP_URL: `smtp://127.0.0.1:${port}`,
      });
      const base = await server.waitForListening();
      await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: REGISTER, variables: { input: newIdentity('hung-mail') } }),
      });
      await waitFor(() => sockets.length > 0, 10_000, 'the server to connect to SMTP');

      const signalled = Date.now();
      server.signal('SIGTERM');

      expect(await server.wait()).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(server.logs.map((log) => log.msg)).toContain(
        'SMTP send still in progress at shutdown; closing the connection',
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silentSmtp.close(resolve));
    }
  });
});
