import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { useHarness } from '../support/harness';
import { signUp } from '../support/members';

// Introspection off, as in production, and a proxy in front that sets
// X-Forwarded-For.
const harness = useHarness({ ENABLE_INTROSPECTION: 'false', TRUST_PROXY: 'true' }, { smtp: true });

const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
});

/** Creates a graphql-ws client whose upgrade request carries the given headers. */
function wsClient(token: string, headers: Record<string, string> = {}): Client {
  class WebSocketWithHeaders extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  const client = createClient({
    url: harness().server.wsUrl,
    webSocketImpl: WebSocketWithHeaders,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  clients.push(client);
  return client;
}

/** Runs one operation and returns its result, or the errors it failed with. */
function runOnce(client: Client, query: string): Promise<any> {
  return new Promise((resolve) => {
    let result: unknown;
    client.subscribe(
      { query },
      {
        next: (value) => (result = value),
        error: (errors) => resolve({ errors }),
        complete: () => resolve(result),
      },
    );
  });
}

const REVEAL = 'mutation { revealPrepaidId { __typename } }';

async function revealAddresses(username: string): Promise<string[]> {
  const rows = await harness()
    .sql()
    .query<{ ip: string }>(
      `SELECT a.ip FROM audit_log a JOIN member m ON m.id = a.actor_member_id
        WHERE m.username = ? AND a.action = 'prepaid_id_revealed' ORDER BY a.id`,
      [username],
    );
  return rows.map((row) => row.ip);
}

describe('graphql-ws behind the HTTP rules', () => {
  test('rejects introspection when it is off', async () => {
    const member = await signUp(harness(), 'introspect');
    const client = wsClient(member.sessionToken);

    const schema = await runOnce(client, '{ __schema { queryType { name } } }');
    const type = await runOnce(client, '{ __type(name: "Query") { name } }');
    const typename = await runOnce(client, '{ __typename }');
    const overHttp = await harness().request('{ __schema { queryType { name } } }');

    // graphql-js reports every field of an introspection type.
    expect(schema.errors.map((error: any) => error.message)).toEqual([
      'GraphQL introspection has been disabled, but the requested query contained the field "__schema".',
      'GraphQL introspection has been disabled, but the requested query contained the field "queryType".',
    ]);
    expect(schema.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(type.errors[0].message).toBe(
      'GraphQL introspection has been disabled, but the requested query contained the field "__type".',
    );
    expect(type.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(typename).toEqual({ data: { __typename: 'Query' } });
    expect(overHttp.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  test('uses X-Forwarded-For behind a trusted proxy', async () => {
    const member = await signUp(harness(), 'proxied');

    const proxied = await runOnce(
      wsClient(member.sessionToken, { 'x-forwarded-for': '203.0.113.7' }),
      REVEAL,
    );
    const direct = await runOnce(wsClient(member.sessionToken), REVEAL);
    await harness().request(REVEAL, {}, member.sessionToken);

    expect(proxied).toEqual({ data: { revealPrepaidId: { __typename: 'PrepaidIdRevealed' } } });
    expect(direct).toEqual(proxied);
    // Over WebSocket with and without the header, then over HTTP without it.
    expect(await revealAddresses(member.username)).toEqual([
      '203.0.113.7',
      '127.0.0.1',
      '127.0.0.1',
    ]);
  });
});
