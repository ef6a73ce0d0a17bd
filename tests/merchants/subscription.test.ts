import type { Client } from 'graphql-ws';
import { CHARGE, chargeInput, newKey, REFUND, useHarness, waitFor } from '../support/harness';

const harness = useHarness();

const POSTED = `
  subscription {
    merchantTransactionPosted {
      settlementBalance
      transaction { id kind amount direction balanceAfter orderReference }
    }
  }`;

interface Received {
  events: any[];
  errors: unknown[];
  done: boolean;
}

/** Subscribes and collects every event until the client is disposed. */
function collect(client: Client, query = POSTED): Received {
  const received: Received = { events: [], errors: [], done: false };
  client.subscribe(
    { query },
    {
      next: (message) => {
        if (message.errors) received.errors.push(...message.errors);
        else received.events.push(message.data!.merchantTransactionPosted);
      },
      error: (error) => received.errors.push(error),
      complete: () => (received.done = true),
    },
  );
  return received;
}

/** Waits until the relay has delivered everything committed so far, and a little more. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
}

describe('merchantTransactionPosted', () => {
  test('sends one event per charge and refund, none for a failed charge', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    const before = harness().services.hub.activeCount;
    const received = collect(harness().wsClient(merchant.key));
    await harness().waitForSubscribers(before + 1);

    const charge = await harness().request(
      CHARGE,
      chargeInput(card!, 600, { orderReference: 'sub-1' }),
      merchant.key,
    );
    const failed = await harness().request(CHARGE, chargeInput(card!, 600), merchant.key);
    await harness().request(
      REFUND,
      {
        input: {
          transactionId: charge.data!.charge.transaction.id,
          amount: 100,
          idempotencyKey: newKey(),
        },
      },
      merchant.key,
    );
    await waitFor(() => received.events.length >= 2, 5_000, 'two events');
    await settle();

    expect(failed.data!.charge.code).toBe('INSUFFICIENT_BALANCE');
    expect(received.errors).toEqual([]);
    expect(received.events).toHaveLength(2);
    expect(received.events[0]).toMatchObject({
      settlementBalance: 600,
      transaction: {
        id: charge.data!.charge.transaction.id,
        kind: 'CHARGE',
        amount: 600,
        direction: 'CREDIT',
        orderReference: 'sub-1',
      },
    });
    expect(received.events[1]).toMatchObject({
      settlementBalance: 500,
      transaction: { kind: 'REFUND', amount: 100, direction: 'DEBIT', balanceAfter: 500 },
    });
  });

  test('50 concurrent charges arrive once, in commit order', async () => {
    // Half of the cards have lower ledger account ids than the merchant, so
    // their charges lock the card first and then wait for the merchant.
    const cards = await harness().issueCards(25, 1_000);
    const merchant = await harness().createMerchant();
    cards.push(...(await harness().issueCards(25, 1_000)));
    const before = harness().services.hub.activeCount;
    const received = collect(harness().wsClient(merchant.key));
    await harness().waitForSubscribers(before + 1);

    const results = await Promise.all(
      cards.map((card, index) =>
        harness().request(CHARGE, chargeInput(card, index + 1), merchant.key),
      ),
    );
    await waitFor(() => received.events.length >= 50, 10_000, '50 events');
    await settle();

    const chargeIds = results.map((result) => result.data!.charge.transaction.id).sort();
    const eventIds = received.events.map((event) => event.transaction.id);
    expect(received.events).toHaveLength(50);
    expect(new Set(eventIds).size).toBe(50);
    expect([...eventIds].sort()).toEqual(chargeIds);
    // Every event carries the settlement balance after its own charge, so in
    // commit order the balances rise by exactly each event's amount.
    let expected = 0;
    for (const event of received.events) {
      expected += event.transaction.amount;
      expect(event.settlementBalance).toBe(expected);
    }
    expect(expected).toBe((50 * 51) / 2);
  });

  test("never sends another merchant's events", async () => {
    const merchant = await harness().createMerchant('Mine');
    const other = await harness().createMerchant('Theirs');
    const [card] = await harness().issueCards(1, 1_000);
    const before = harness().services.hub.activeCount;
    const mine = collect(harness().wsClient(merchant.key));
    const theirs = collect(harness().wsClient(other.key));
    await harness().waitForSubscribers(before + 2);

    await harness().request(CHARGE, chargeInput(card!, 100), merchant.key);
    await harness().request(CHARGE, chargeInput(card!, 200), merchant.key);
    await waitFor(() => mine.events.length >= 2, 5_000, 'two events');
    await settle();

    expect(mine.events).toHaveLength(2);
    expect(theirs.events).toEqual([]);
  });

  test('does not replay charges made before subscribing', async () => {
    const merchant = await harness().createMerchant();
    const [card] = await harness().issueCards(1, 1_000);
    await harness().request(CHARGE, chargeInput(card!, 100), merchant.key);
    const before = harness().services.hub.activeCount;
    const received = collect(harness().wsClient(merchant.key));
    await harness().waitForSubscribers(before + 1);

    await harness().request(CHARGE, chargeInput(card!, 250), merchant.key);
    await waitFor(() => received.events.length >= 1, 5_000, 'one event');
    await settle();

    expect(received.events).toHaveLength(1);
    expect(received.events[0].transaction.amount).toBe(250);
  });

  test('rejects a connection without a valid key', async () => {
    const received = collect(harness().wsClient('mk_000000000000_' + 'x'.repeat(43)));
    const anonymous = collect(harness().wsClient());

    await waitFor(
      () => received.errors.length > 0 && anonymous.errors.length > 0,
      5_000,
      'connection errors',
    );

    expect((received.errors[0] as { code: number }).code).toBe(4403);
    expect((anonymous.errors[0] as { code: number }).code).toBe(4403);
    expect(received.events).toEqual([]);
  });
});
