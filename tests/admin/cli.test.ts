import { CHARGE, chargeInput, useHarness, apiKeyPrefix, apiKeySecret } from '../support/harness';
import { ServerProcess } from '../support/server-process';

const harness = useHarness();

async function admin(...args: string[]): Promise<{ code: number | null; lines: string[] }> {
  const cli = ServerProcess.start(
    'dist/src/admin/cli.js',
    { DATABASE_URL: harness().config.databaseUrl },
    args,
  );
  const code = await cli.wait(30_000);
  return { code, lines: cli.lines };
}

describe('operator CLI', () => {
  test('creates a merchant, a key and cards that can be charged', async () => {
    const created = await admin('merchant:create', '--name', 'CLI Shop');
    expect(created.code).toBe(0);
    const merchantId = /^merchant ([0-9a-f-]{36}) "CLI Shop" created$/.exec(created.lines[0]!)![1]!;

    const key = await admin('key:create', '--merchant', merchantId, '--label', 'till 1');
    expect(key.code).toBe(0);
    expect(key.lines).toHaveLength(2);
    const apiKey = key.lines[1]!;
    expect(apiKey).toMatch(/^mk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);

    const cards = await admin(
      'cards:issue',
      '--count',
      '3',
      '--value',
      '500',
      '--note',
      'cli test',
    );
    expect(cards.code).toBe(0);
    expect(cards.lines[0]).toMatch(/^batch [0-9a-f-]{36}: 3 cards of 500 points\. Prepaid IDs:$/);
    const ids = cards.lines.slice(1);
    expect(ids).toHaveLength(3);
    for (const id of ids) expect(id).toMatch(/^\d{4} \d{4} \d{4} \d{4}$/);
    expect(new Set(ids).size).toBe(3);

    const { data } = await harness().request(CHARGE, chargeInput(ids[0]!, 500), apiKey);
    expect(data!.charge).toMatchObject({ __typename: 'ChargeSuccess', balanceAfter: 0 });

    const check = await admin('ledger:check');
    expect(check.code).toBe(0);
    expect(JSON.parse(check.lines.join('\n'))).toMatchObject({
      balanced: true,
      totalPosted: 0,
      mismatches: [],
    });
  });

  test('stores no prepaid ID or key in plain text', async () => {
    const created = await admin('merchant:create', '--name', 'Secrets');
    const merchantId = /([0-9a-f-]{36})/.exec(created.lines[0]!)![1]!;
    const key = (await admin('key:create', '--merchant', merchantId)).lines[1]!;
    const ids = (await admin('cards:issue', '--count', '2', '--value', '100')).lines
      .slice(1)
      .map((id) => id.replace(/ /g, ''));

    const dump = await harness()
      .sql()
      .query<{ row: string }>(
        `SELECT row_to_json(p)::text AS row FROM prepaid_id p
       UNION ALL SELECT row_to_json(k)::text FROM merchant_api_key k
       UNION ALL SELECT row_to_json(c)::text FROM prepaid_card c
       UNION ALL SELECT row_to_json(l)::text FROM ledger_transaction l`,
      );
    const text = dump.map((entry) => entry.row).join('\n');
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain(apiKeySecret(key));
  });

  test('lists and revokes keys by prefix', async () => {
    const created = await admin('merchant:create', '--name', 'Keys');
    const merchantId = /([0-9a-f-]{36})/.exec(created.lines[0]!)![1]!;
    const apiKey = (await admin('key:create', '--merchant', merchantId, '--scopes', 'charge,read'))
      .lines[1]!;
    const prefix = apiKeyPrefix(apiKey);

    const listed = await admin('key:list', '--merchant', merchantId);
    const revoked = await admin('key:revoke', '--prefix', prefix);
    const again = await admin('key:revoke', '--prefix', prefix);
    const after = await admin('key:list', '--merchant', merchantId);

    expect(listed.lines).toHaveLength(1);
    expect(listed.lines[0]).toMatch(new RegExp(`^${prefix}  active  scopes charge,read  created `));
    expect(revoked).toEqual({ code: 0, lines: [`API key ${prefix} revoked`] });
    expect(again.code).toBe(1);
    expect(again.lines).toEqual([`error: no active API key has the prefix ${prefix}`]);
    expect(after.lines[0]).toMatch(new RegExp(`^${prefix}  revoked `));
    const { status } = await harness().request('{ merchant { name } }', {}, apiKey);
    expect(status).toBe(401);
  });

  test('explains usage errors with exit code 2', async () => {
    const unknown = await admin('merchant:delete');
    const missing = await admin('cards:issue', '--count', '3');
    const invalid = await admin('cards:issue', '--count', 'three', '--value', '100');
    const unknownOption = await admin('merchant:list', '--verbose');

    expect(unknown.code).toBe(2);
    expect(unknown.lines[0]).toBe('Unknown command "merchant:delete".');
    expect(missing.code).toBe(2);
    expect(missing.lines[0]).toBe('error: --value is required');
    expect(invalid.code).toBe(2);
    expect(invalid.lines[0]).toBe('error: --count must be a positive whole number, got "three"');
    expect(unknownOption.code).toBe(2);
  });
});
