import { CHARGE, chargeInput, Harness } from '../support/harness';

const BALANCE = 'query B($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }';
const METRICS_TOKEN = 'metrics-token-for-tests';

let harness: Harness;
beforeAll(async () => {
  harness = await Harness.start({
    RATE_LIMITS: JSON.stringify({ inquiryPerCaller: { points: 1, durationSeconds: 60 } }),
    METRICS_TOKEN,
  });
});
afterAll(async () => {
  await harness.stop();
});

function metricsUrl(): string {
  return harness.server.url.replace(/\/graphql$/, '/metrics');
}

/** Reads /metrics and returns each sample's value by its name and labels as printed. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(metricsUrl(), {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  expect(response.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

describe('/metrics', () => {
  test('rejects a scrape without the token', async () => {
    const missing = await fetch(metricsUrl());
    const wrong = await fetch(metricsUrl(), { headers: { authorization: 'Bearer wrong' } });

    expect(missing.status).toBe(401);
    expect(wrong.status).toBe(401);
  });

  test('counts postings, operations and rejections', async () => {
    const merchant = await harness.createMerchant();
    const [card] = await harness.issueCards(1, 1_000);
    const before = await scrape();

    await harness.request(CHARGE, chargeInput(card!, 400), merchant.key);
    await harness.request(CHARGE, chargeInput(card!, 5_000), merchant.key);
    await harness.request(CHARGE, chargeInput(card!, 100));
    await harness.request('{ nope }', {}, merchant.key);
    await harness.request(BALANCE, { id: card }, merchant.key);
    await harness.request(BALANCE, { id: card }, merchant.key);
    const after = await scrape();

    const change = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(change('wallet_ledger_postings_total{kind="charge",result="posted"}')).toBe(1);
    expect(
      change('wallet_ledger_postings_total{kind="charge",result="INSUFFICIENT_BALANCE"}'),
    ).toBe(1);
    expect(
      change('wallet_graphql_operations_total{type="mutation",field="charge",outcome="ok"}'),
    ).toBe(2);
    expect(
      change(
        'wallet_graphql_operations_total{type="mutation",field="charge",outcome="UNAUTHENTICATED"}',
      ),
    ).toBe(1);
    expect(
      change(
        'wallet_graphql_operations_total{type="unknown",field="(invalid)",outcome="GRAPHQL_VALIDATION_FAILED"}',
      ),
    ).toBe(1);
    expect(
      change(
        'wallet_graphql_operations_total{type="query",field="prepaidBalance",outcome="RATE_LIMITED"}',
      ),
    ).toBe(1);
    expect(change('wallet_rate_limit_rejections_total{limit="inquiryPerCaller"}')).toBe(1);
    expect(
      change(
        'wallet_http_request_duration_seconds_count{method="POST",route="/graphql",status="200"}',
      ),
    ).toBe(5);
  });

  test('reports subscriptions, connections, the pool and the process', async () => {
    const merchant = await harness.createMerchant();
    const client = harness.wsClient(merchant.key);
    const stop = client.subscribe(
      { query: 'subscription { merchantTransactionPosted { settlementBalance } }' },
      { next: () => undefined, error: () => undefined, complete: () => undefined },
    );
    await harness.waitForSubscribers(1);

    const samples = await scrape();
    stop();

    expect(samples.get('wallet_active_subscriptions')).toBe(1);
    expect(samples.get('wallet_websocket_connections')).toBe(1);
    expect(samples.get('wallet_database_pool_connections{state="pending"}')).toBe(0);
    expect(samples.get('wallet_database_pool_connections{state="free"}')).toBeGreaterThan(0);
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});
