import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import { LOGIN, signUp } from '../support/members';

const harness = useHarness(
  {
    WS_MAX_OPERATIONS_PER_CONNECTION: '3',
    WS_MAX_CONNECTIONS_PER_MEMBER: '2',
    WS_MAX_CONNECTIONS_PER_MERCHANT: '2',
  },
  { smtp: true },
);

const BALANCE = 'subscription { balanceChanged { balanceAvailable } }';

interface Connection {
  client: Client;
  closed?: { code: number; reason: string };
}

const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
});

/** Opens a connection at once and resolves when the server accepts or closes it. */
function connect(token: string): Promise<Connection> {
  const client = createClient({
    url: harness().server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    // The close is what the test expects; graphql-ws would print it.
    onNonLazyError: () => undefined,
  });
  clients.push(client);
  return new Promise((resolve) => {
    client.on('connected', () => resolve({ client }));
    client.on('closed', (event) => {
      const { code, reason } = event as { code: number; reason: string };
      resolve({ client, closed: { code, reason } });
    });
  });
}

/** Connects until the server has released a closed connection's place. */
async function connectAfterRelease(token: string): Promise<Connection> {
  let connection: Connection | undefined;
  await waitFor(
    async () => {
      connection = await connect(token);
      if (connection.closed) await connection.client.dispose();
      return !connection.closed;
    },
    5_000,
    'a free connection place',
  );
  return connection!;
}

/** Subscribes and resolves with the errors if the server rejects the subscription. */
function subscribe(client: Client, query: string) {
  let rejected: unknown[] | undefined;
  const unsubscribe = client.subscribe(
    { query },
    {
      next: () => undefined,
      error: (errors) => (rejected = errors as unknown[]),
      complete: () => undefined,
    },
  );
  return { unsubscribe, rejected: () => rejected };
}

describe('operations per connection', () => {
  test('fourth subscription on a connection is rejected', async () => {
    const member = await signUp(harness(), 'many-subs');
    const { client } = await connect(member.sessionToken);
    const before = harness().services.hub.activeCount;

    const running = [1, 2, 3].map(() => subscribe(client, BALANCE));
    await harness().waitForSubscribers(before + 3);
    const fourth = subscribe(client, BALANCE);
    await waitFor(() => fourth.rejected() !== undefined, 5_000, 'the fourth subscription to fail');

    const [error] = fourth.rejected() as Array<{ message: string; extensions: { code: string } }>;
    expect(error!.extensions.code).toBe('TOO_MANY_OPERATIONS');
    expect(error!.message).toBe(
      'Too many operations on this connection: at most 3 may run at once. Complete one first, or open another connection.',
    );
    expect(harness().services.hub.activeCount).toBe(before + 3);
    expect(running.map((subscription) => subscription.rejected())).toEqual([
      undefined,
      undefined,
      undefined,
    ]);

    // Completing one frees its place on the connection.
    running[0]!.unsubscribe();
    await waitFor(
      () => harness().services.hub.activeCount === before + 2,
      5_000,
      'the completed subscription to end',
    );
    const replacement = subscribe(client, BALANCE);
    await harness().waitForSubscribers(before + 3);
    expect(replacement.rejected()).toBeUndefined();
  });
});

/** Opens a socket that speaks graphql-transport-ws by hand, to send what the graphql-ws client never would. */
async function rawSocket(token: string) {
  const socket = new WebSocket(harness().server.wsUrl, 'graphql-transport-ws');
  const messages: Array<{ id?: string; type: string; payload?: any }> = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
  );
  await waitFor(
    () => messages.some((message) => message.type === 'connection_ack'),
    5_000,
    'the ack',
  );
  const send = (message: object) => socket.send(JSON.stringify(message));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  return { socket, messages, send, closed };
}

describe('operations per connection, by hand', () => {
  // graphql-ws deletes an id when the client completes it, so completing
  // and reusing one id once started any number of subscriptions.
  test('reused id cannot add subscriptions', async () => {
    const member = await signUp(harness(), 'reuse-id');
    const raw = await rawSocket(member.sessionToken);
    const before = harness().services.hub.activeCount;

    // The last subscribe is not completed. Before the fix, each earlier
    // subscription found the id taken again when its check ended, and stayed.
    for (let round = 0; round < 40; round++) {
      raw.send({ id: 'x', type: 'subscribe', payload: { query: BALANCE } });
      raw.send({ id: 'x', type: 'complete' });
    }
    raw.send({ id: 'x', type: 'subscribe', payload: { query: BALANCE } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const afterBurst = harness().services.hub.activeCount;
    raw.send({ id: 'y', type: 'subscribe', payload: { query: BALANCE } });
    await harness().waitForSubscribers(before + 1);

    expect(afterBurst).toBe(before);
    expect(harness().services.hub.activeCount).toBe(before + 1);
    raw.socket.close();
    await raw.closed;
    await waitFor(
      () => harness().services.hub.activeCount === before,
      5_000,
      'the subscriptions to end with the socket',
    );
  });

  test('completed mutations count until they finish', async () => {
    const merchant = await harness().createMerchant('Burst Shop');
    const [card] = await harness().issueCards(1, 10_000);
    const raw = await rawSocket(merchant.key);

    for (let index = 0; index < 30; index++) {
      raw.send({
        id: `c${index}`,
        type: 'subscribe',
        payload: { query: CHARGE, variables: chargeInput(card!, 10) },
      });
      raw.send({ id: `c${index}`, type: 'complete' });
    }
    // graphql-ws sends nothing for a completed id, not even the rejection,
    // so the balance shows how many ran.
    await waitFor(async () => (await harness().balanceOf(card!)) <= 9_970, 5_000, 'three charges');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await harness().balanceOf(card!)).toBe(9_970);
    raw.socket.close();
  });
});

describe('operations graphql-js cannot run', () => {
  // graphql-js threw for these, and graphql-ws closed the whole socket with
  // 4500 and the error's message as the reason.
  test.each([
    [
      'a root field skipped by a directive',
      'subscription { merchantTransactionPosted @skip(if: true) { settlementBalance } }',
      {},
    ],
    [
      'a skipped root field in a fragment',
      'subscription { ...Posted } fragment Posted on Subscription { merchantTransactionPosted @skip(if: true) { settlementBalance } }',
      {},
    ],
    [
      'a root field that depends on a variable',
      'subscription ($on: Boolean!) { merchantTransactionPosted @include(if: $on) { settlementBalance } }',
      { on: true },
    ],
  ])('fails %s and keeps the socket', async (_case, query, variables) => {
    const merchant = await harness().createMerchant('Odd Subscriber');
    const raw = await rawSocket(merchant.key);
    const before = harness().services.hub.activeCount;

    raw.send({ id: 'odd', type: 'subscribe', payload: { query, variables } });
    await waitFor(
      () =>
        raw.messages.some(
          (message) => message.id === 'odd' && ['error', 'complete'].includes(message.type),
        ),
      5_000,
      'the odd operation to end',
    );
    raw.send({
      id: 'normal',
      type: 'subscribe',
      payload: { query: 'subscription { merchantTransactionPosted { settlementBalance } }' },
    });
    await harness().waitForSubscribers(before + 1);

    const odd = raw.messages.filter((message) => message.id === 'odd');
    expect(
      odd.map((message) => [
        message.type,
        (message.type === 'next' ? message.payload.errors : message.payload)?.[0]?.extensions?.code,
      ]),
    ).toEqual([['error', 'GRAPHQL_VALIDATION_FAILED']]);
    expect(odd[0]!.payload[0].message).toBe(
      'A subscription cannot put @skip or @include on its root field. Subscribe without it, or not at all.',
    );
    expect(raw.socket.readyState).toBe(WebSocket.OPEN);
    raw.socket.close();
  });
});

describe('connections per caller', () => {
  test('third connection of a member is closed', async () => {
    const member = await signUp(harness(), 'many-sockets');
    const other = await signUp(harness(), 'other-sockets');

    const first = await connect(member.sessionToken);
    const second = await connect(member.sessionToken);
    const third = await connect(member.sessionToken);
    const otherMember = await connect(other.sessionToken);

    expect(first.closed).toBeUndefined();
    expect(second.closed).toBeUndefined();
    expect(third.closed).toEqual({ code: 4403, reason: 'Too many connections for this caller' });
    expect(otherMember.closed).toBeUndefined();

    // Closing a connection frees its place.
    await first.client.dispose();
    const replacement = await connectAfterRelease(member.sessionToken);
    expect(replacement.closed).toBeUndefined();
  });

  test('signing out closes the connections and frees them', async () => {
    const member = await signUp(harness(), 'sign-out-sockets');
    const first = await connect(member.sessionToken);
    const second = await connect(member.sessionToken);
    const closeCodes: number[] = [];
    for (const { client } of [first, second])
      client.on('closed', (event) => closeCodes.push((event as { code: number }).code));

    await harness().request('mutation { logout { endedSessions } }', {}, member.sessionToken);
    await waitFor(() => closeCodes.length === 2, 5_000, 'both connections to close');
    const login = await harness().request(LOGIN, {
      input: { login: member.username, password: member.password },
    });
    const token = login.data!.login.sessionToken as string;
    const again = [await connect(token), await connect(token)];

    expect(closeCodes).toEqual([4401, 4401]);
    expect(again.map((connection) => connection.closed)).toEqual([undefined, undefined]);
  });

  test('merchant limit counts every key of the merchant', async () => {
    const merchant = await harness().createMerchant('Socket Shop');
    const secondKey = await harness().services.apiKeys.create(
      harness().sql(),
      merchant.id,
      'second',
    );

    const first = await connect(merchant.key);
    const second = await connect(secondKey.key);
    const third = await connect(merchant.key);

    expect(first.closed).toBeUndefined();
    expect(second.closed).toBeUndefined();
    expect(third.closed).toEqual({ code: 4403, reason: 'Too many connections for this caller' });
  });
});
