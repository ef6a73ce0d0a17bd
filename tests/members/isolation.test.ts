import { observeStatements } from '../../src/database/sql';
import { CHARGE, chargeInput, useHarness, waitFor } from '../support/harness';
import { signUp, VIEWER, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true });

describe('member isolation', () => {
  test('200 concurrent viewer queries each get their own member', async () => {
    const alice = await signUp(harness(), 'alice');
    const bob = await signUp(harness(), 'bob');
    await harness().fund(await walletPrepaidId(harness(), alice.sessionToken), 111);
    await harness().fund(await walletPrepaidId(harness(), bob.sessionToken), 222);

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, index) => {
        const member = index % 2 === 0 ? alice : bob;
        return harness()
          .request(VIEWER, {}, member.sessionToken)
          .then((response) => ({ member, response }));
      }),
    );

    for (const { member, response } of results) {
      expect(response.data!.viewer.username).toBe(member.username);
      expect(response.data!.viewer.wallet.balancePosted).toBe(member === alice ? 111 : 222);
    }
  });

  test('history loads merchant names in one query per page', async () => {
    const member = await signUp(harness(), 'history');
    const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
    await harness().fund(prepaidId, 10_000);
    const merchants = await Promise.all(
      [1, 2, 3, 4].map((index) => harness().createMerchant(`Shop ${index}`)),
    );
    for (let index = 0; index < 20; index++) {
      await harness().request(CHARGE, chargeInput(prepaidId, 10), merchants[index % 4]!.key);
    }
    const page = (first: number) =>
      `{ viewer { wallet { history(first: ${first}) { edges { node { amount merchantName } } } } } }`;
    // Counts the statements of this request that read transactions or
    // merchants; other statements, such as the mail dispatcher's polls, run
    // on the same connection pool meanwhile.
    const queriesFor = async (first: number) => {
      let count = 0;
      const stop = observeStatements((text) => {
        if (/FROM (ledger_transaction|merchant)\b/.test(text)) count++;
      });
      const response = await harness().request(page(first), {}, member.sessionToken);
      stop();
      return { count, response };
    };

    const small = await queriesFor(2);
    const large = await queriesFor(20);

    expect(large.response.data!.viewer.wallet.history.edges).toHaveLength(20);
    expect(
      new Set(
        large.response.data!.viewer.wallet.history.edges.map((edge: any) => edge.node.merchantName),
      ).size,
    ).toBe(4);
    // One page query and one merchant-name query, whatever the page size.
    expect(small.count).toBe(2);
    expect(large.count).toBe(2);
  });

  test('a subscriber on one instance gets charges made through another', async () => {
    const member = await signUp(harness(), 'peer');
    const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
    await harness().fund(prepaidId, 1_000);
    const merchant = await harness().createMerchant();
    const peer = await harness().startPeer();
    const events: any[] = [];
    harness()
      .wsClient(member.sessionToken, { url: peer.wsUrl })
      .subscribe(
        { query: 'subscription { balanceChanged { balancePosted } }' },
        { next: (event) => events.push(event), error: () => undefined, complete: () => undefined },
      );
    await waitFor(() => peer.services.hub.activeCount === 1, 5_000, 'the subscription on the peer');

    await harness().request(CHARGE, chargeInput(prepaidId, 300), merchant.key);
    await harness().request(CHARGE, chargeInput(prepaidId, 200), merchant.key);
    await waitFor(() => events.length >= 2, 5_000, 'two events on the peer');
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(events.map((event) => event.data.balanceChanged.balancePosted)).toEqual([700, 500]);
  });
});
