import type { Client } from 'graphql-ws';
import { CHARGE, chargeInput, useHarness, waitFor, apiKeyPrefix } from '../support/harness';
import { signUp } from '../support/members';

const harness = useHarness({}, { smtp: true });

interface Outcome {
  results: any[];
  errors: any[];
  completed: boolean;
}

/** Runs one operation on the client and collects what comes back until it completes or fails. */
function run(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
): Outcome & { done: Promise<void> } {
  const outcome: Outcome = { results: [], errors: [], completed: false };
  const done = new Promise<void>((resolve) => {
    client.subscribe(
      { query, variables },
      {
        next: (result) => outcome.results.push(result),
        error: (error) => {
          outcome.errors.push(error);
          resolve();
        },
        complete: () => {
          outcome.completed = true;
          resolve();
        },
      },
    );
  });
  return Object.assign(outcome, { done });
}

const POSTED = 'subscription { merchantTransactionPosted { transaction { id } } }';

describe('graphql-ws', () => {
  test('a syntax error fails its operation and keeps the socket', async () => {
    const merchant = await harness().createMerchant();
    const client = harness().wsClient(merchant.key);

    const broken = run(client, 'subscription {');
    await broken.done;
    const working = run(client, '{ merchant { name } }');
    await working.done;

    expect(broken.errors[0][0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(working.results).toEqual([{ data: { merchant: { name: 'Test Shop' } } }]);
  });

  test('reports validation errors with their code', async () => {
    const merchant = await harness().createMerchant();

    const misspelt = run(
      harness().wsClient(merchant.key),
      'subscription { merchantTransactionPostd { amount } }',
    );
    await misspelt.done;

    expect(misspelt.errors[0][0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(misspelt.errors[0][0].message).toContain('merchantTransactionPostd');
  });

  test('masks database errors and answers bad cursors as bad input', async () => {
    const merchant = await harness().createMerchant();
    const after = Buffer.from(
      JSON.stringify(['9999-99-99T99:99:99.999999Z', '00000000-0000-0000-0000-000000000000']),
    ).toString('base64url');

    const page = run(
      harness().wsClient(merchant.key),
      'query P($after: String) { merchant { transactions(first: 1, after: $after) { edges { cursor } } } }',
      { after },
    );
    await page.done;

    expect(page.results[0].errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(page.results)).not.toMatch(/SELECT|merchant_id/);
  });

  test('reports variables of the wrong type as bad input', async () => {
    const merchant = await harness().createMerchant();

    const wrong = run(
      harness().wsClient(merchant.key),
      'query B($id: String!) { prepaidBalance(prepaidId: $id) { valid } }',
      { id: 5 },
    );
    await wrong.done;

    const error = wrong.results[0]?.errors?.[0] ?? wrong.errors[0]?.[0];
    expect(error.extensions.code).toBe('BAD_USER_INPUT');
  });

  test('revoking a key closes its open socket', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const client = harness().wsClient(merchant.key);
    const closeCodes: number[] = [];
    client.on('closed', (event) => closeCodes.push((event as { code: number }).code));
    const before = harness().services.hub.activeCount;
    const subscription = run(client, POSTED);
    await harness().waitForSubscribers(before + 1);

    await harness().services.apiKeys.revoke(harness().sql(), apiKeyPrefix(merchant.key));
    await subscription.done;
    // The client connects again for the charge, and the key is refused.
    const charge = run(client, CHARGE, chargeInput(card!, 100));
    await charge.done;

    expect(closeCodes).toEqual([4401, 4403]);
    expect((subscription.errors[0] as { code: number }).code).toBe(4401);
    expect((charge.errors[0] as { code: number }).code).toBe(4403);
    expect(await harness().balanceOf(card!)).toBe(1_000);
  });

  test('signing out closes the member subscription', async () => {
    const member = await signUp(harness(), 'wsout');
    const before = harness().services.hub.activeCount;
    const subscription = run(
      harness().wsClient(member.sessionToken),
      'subscription { balanceChanged { balancePosted } }',
    );
    await harness().waitForSubscribers(before + 1);

    await harness().request('mutation { logout { endedSessions } }', {}, member.sessionToken);

    await waitFor(
      () => subscription.completed || subscription.errors.length > 0,
      5_000,
      'the subscription to end',
    );
    expect(harness().services.hub.activeCount).toBe(before);
  });

  test("a member cannot subscribe to another member's wallet", async () => {
    const alice = await signUp(harness(), 'alice');
    const bob = await signUp(harness(), 'bob');
    const merchant = await harness().createMerchant();
    const aliceWallet = (await harness().services.wallets.findByMember(
      harness().sql(),
      (await harness()
        .sql()
        .one<{ id: string }>('SELECT id FROM member WHERE username = ?', [alice.username]))!.id,
    ))!;
    const aliceId = await harness().services.prepaidIds.reveal(
      harness().sql(),
      aliceWallet.prepaidIdId,
    );
    await harness().fund(aliceId, 500);
    const before = harness().services.hub.activeCount;
    const bobEvents = run(
      harness().wsClient(bob.sessionToken),
      'subscription { balanceChanged { balancePosted } }',
    );
    const aliceEvents = run(
      harness().wsClient(alice.sessionToken),
      'subscription { balanceChanged { balancePosted } }',
    );
    await harness().waitForSubscribers(before + 2);

    await harness().request(CHARGE, chargeInput(aliceId, 200), merchant.key);
    await waitFor(() => aliceEvents.results.length >= 1, 5_000, "alice's event");
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(aliceEvents.results).toEqual([{ data: { balanceChanged: { balancePosted: 300 } } }]);
    expect(bobEvents.results).toEqual([]);
  });
});
