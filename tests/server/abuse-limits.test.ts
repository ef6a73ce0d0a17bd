import type { Client } from 'graphql-ws';
import { Harness } from '../support/harness';

let harness: Harness;
let production: Harness;
let merchantKey: string;
beforeAll(async () => {
  const limits = {
    GRAPHQL_MAX_DEPTH: '5',
    GRAPHQL_MAX_COST: '400',
    GRAPHQL_MAX_ALIASES: '5',
    GRAPHQL_MAX_ROOT_FIELDS: '6',
    GRAPHQL_MAX_DIRECTIVES: '3',
    GRAPHQL_MAX_TOKENS: '400',
  };
  harness = await Harness.start(limits);
  production = await Harness.start({ ...limits, NODE_ENV: 'production' });
  merchantKey = (await harness.createMerchant()).key;
});
afterAll(async () => {
  await harness.stop();
  await production.stop();
});

const deep =
  '{ merchant { transactions(first: 1) { edges { node { id } } pageInfo { endCursor } } } }'.replace(
    '{ node { id } }',
    '{ node { id } cursor }',
  );

const CASES: Array<[string, string, string]> = [
  ['too deep', '{ viewer { wallet { history { edges { node { id } } } } } }', 'QUERY_TOO_DEEP'],
  [
    'too costly',
    `{ ${Array.from({ length: 5 }, (_, index) => `m${index}: merchant { id name settlementBalance creditLimit transactions(first: 5) { edges { cursor node { id kind status amount direction balanceAfter } } } }`).join(' ')} }`,
    'QUERY_TOO_COMPLEX',
  ],
  [
    'too many aliases',
    `{ ${Array.from({ length: 6 }, (_, index) => `a${index}: viewer { id }`).join(' ')} }`,
    'TOO_MANY_ALIASES',
  ],
  [
    'too many root fields',
    '{ viewer { id } merchant { id } withdrawalPreview { held } ledgerCheck { balanced } a: viewer { id } b: viewer { id } c: viewer { id } }',
    'TOO_MANY_ROOT_FIELDS',
  ],
  [
    'too many directives',
    '{ viewer @skip(if: false) @include(if: true) { id @skip(if: false) username @include(if: true) } }',
    'TOO_MANY_DIRECTIVES',
  ],
  ['too long', `{ viewer { ${'id '.repeat(500)} } }`, 'QUERY_TOO_LONG'],
  // graphql-js parses literals recursively: this one used to overflow the stack.
  [
    'with a literal nested too deep to parse',
    `{ wallet(id: ${'['.repeat(3_000)}1${']'.repeat(3_000)}) { id } }`,
    'QUERY_TOO_DEEP',
  ],
  // A comment ends at a carriage return too: the nesting check once read on
  // to the next line feed and skipped the brackets.
  [
    'nested too deep after a comment ended by a carriage return',
    `{ wallet(id: #\r${'['.repeat(3_000)}1${']'.repeat(3_000)}) { id } }`,
    'QUERY_TOO_DEEP',
  ],
  // In a block string only \""" is an escape. Reading \\ as one made the
  // check end the string early, count the closing brackets inside it, and
  // miss the nesting after it.
  [
    'nested too deep after a block string ending in backslashes',
    `{ wallet(id: """x\\\\""" ${']'.repeat(3_000)} """ #"""\n, b: ${'['.repeat(3_000)}1${']'.repeat(3_000)}) { id } }`,
    'QUERY_TOO_DEEP',
  ],
];

describe('operation limits over HTTP', () => {
  test.each(CASES)('rejects an operation %s', async (_case, query, code) => {
    const { errors, data } = await harness.request(query, {}, merchantKey);

    expect(data ?? null).toBeNull();
    expect(errors!.map((error) => error.extensions!.code)).toContain(code);
  });

  test('accepts an ordinary operation', async () => {
    const { errors } = await harness.request(deep, {}, merchantKey);

    expect(errors).toBeUndefined();
  });

  test('rejects a subscription, which is served over WebSocket only', async () => {
    const response = await fetch(harness.server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${merchantKey}` },
      body: JSON.stringify({
        query: 'subscription { merchantTransactionPosted { settlementBalance } }',
      }),
    });

    expect(response.status).toBe(400);
    expect(
      ((await response.json()) as any).errors.map((error: any) => error.extensions.code),
    ).toEqual(['BAD_REQUEST']);
  });

  test('rejects a batch of operations', async () => {
    const response = await fetch(harness.server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });

    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/batch/i);
  });
});

describe('operation limits over WebSocket', () => {
  async function runOverWs(client: Client, query: string): Promise<any[]> {
    return new Promise((resolve) => {
      client.subscribe(
        { query },
        {
          next: () => undefined,
          error: (errors) => resolve(errors as any[]),
          complete: () => resolve([]),
        },
      );
    });
  }

  test.each(CASES)('rejects an operation %s', async (_case, query, code) => {
    const errors = await runOverWs(harness.wsClient(merchantKey), query);

    expect(errors.map((error) => error.extensions?.code)).toContain(code);
  });
});

describe('production mode', () => {
  test('turns off introspection and field suggestions', async () => {
    const key = (await production.createMerchant()).key;

    const introspection = await production.request('{ __schema { types { name } } }', {}, key);
    const typo = await production.request('{ merchnt { id } }', {}, key);
    const wsTypo = await new Promise<any[]>((resolve) => {
      production.wsClient(key).subscribe(
        { query: 'subscription { merchantTransactionPostd { settlementBalance } }' },
        {
          next: () => undefined,
          error: (errors) => resolve(errors as any[]),
          complete: () => resolve([]),
        },
      );
    });

    expect(introspection.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(typo.errors![0]!.message).not.toMatch(/Did you mean/);
    expect(wsTypo[0].message).not.toMatch(/Did you mean/);
    const development = await harness.request('{ merchnt { id } }', {}, merchantKey);
    expect(development.errors![0]!.message).toMatch(/Did you mean "merchant"\?/);
  });
});
