import { CHARGE, chargeInput, useHarness } from '../support/harness';
import { enableTwoFactor, freshTotpCode, signUp, walletPrepaidId } from '../support/members';

const harness = useHarness({}, { smtp: true });

const ROTATE = `
  mutation Rotate($code: String) {
    rotatePrepaidId(twoFactorCode: $code) {
      __typename
      ... on PrepaidIdRotated { prepaidId rotatableAt }
      ... on RotationTooSoonError { code rotatableAt message }
      ... on UserError { code }
    }
  }`;
const ROTATABLE_AT = `{ viewer { wallet { prepaidId prepaidIdRotatableAt } } }`;
const BALANCE = `query B($id: String!) { prepaidBalance(prepaidId: $id) { valid balance } }`;
const HOUR = 60 * 60 * 1000;

async function funded(label: string) {
  const member = await signUp(harness(), label);
  const prepaidId = await walletPrepaidId(harness(), member.sessionToken);
  await harness().fund(prepaidId, 1_000);
  return { member, prepaidId };
}

describe('prepaid ID rotation', () => {
  test('retires the old ID at once and the new one works', async () => {
    const { member, prepaidId } = await funded('rotate');
    const merchant = await harness().createMerchant();

    const { data } = await harness().request(ROTATE, {}, member.sessionToken);
    const newId = data!.rotatePrepaidId.prepaidId as string;

    expect(data!.rotatePrepaidId.__typename).toBe('PrepaidIdRotated');
    expect(newId).toMatch(/^\d{16}$/);
    expect(newId).not.toBe(prepaidId);
    expect(
      (await harness().request(CHARGE, chargeInput(prepaidId, 100), merchant.key)).data!.charge
        .code,
    ).toBe('INVALID_PREPAID_ID');
    expect(
      (await harness().request(BALANCE, { id: prepaidId }, merchant.key)).data!.prepaidBalance,
    ).toEqual({ valid: false, balance: null });
    expect(
      (await harness().request(CHARGE, chargeInput(newId, 100), merchant.key)).data!.charge
        .balanceAfter,
    ).toBe(900);
    expect(
      (await harness().request(BALANCE, { id: newId }, merchant.key)).data!.prepaidBalance,
    ).toEqual({ valid: true, balance: 900 });
    const viewer = await harness().request(ROTATABLE_AT, {}, member.sessionToken);
    expect(viewer.data!.viewer.wallet.prepaidId.slice(-4)).toBe(newId.slice(-4));
  });

  test('refuses a second rotation within 24 hours and names the time', async () => {
    const { member } = await funded('twice');
    const before = await harness().request(ROTATABLE_AT, {}, member.sessionToken);
    expect(before.data!.viewer.wallet.prepaidIdRotatableAt).toBeNull();

    const first = await harness().request(ROTATE, {}, member.sessionToken);
    const firstAt = harness().services.clock.now();
    const second = await harness().request(ROTATE, {}, member.sessionToken);

    expect(second.data!.rotatePrepaidId.code).toBe('ROTATION_TOO_SOON');
    const rotatableAt = second.data!.rotatePrepaidId.rotatableAt as string;
    expect(rotatableAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
    expect(Math.abs(Date.parse(rotatableAt) - (firstAt + 24 * HOUR))).toBeLessThan(5_000);
    expect(first.data!.rotatePrepaidId.rotatableAt).toBe(rotatableAt);
    const viewer = await harness().request(ROTATABLE_AT, {}, member.sessionToken);
    expect(viewer.data!.viewer.wallet.prepaidIdRotatableAt).toBe(rotatableAt);
  });

  test('allows the next rotation after 24:00:01, not at 23:59', async () => {
    const { member } = await funded('clock');
    await harness().request(ROTATE, {}, member.sessionToken);

    harness().services.clock.advance(23 * HOUR + 59 * 60_000);
    const early = await harness().request(ROTATE, {}, member.sessionToken);
    harness().services.clock.advance(60_000 + 1_000);
    const onTime = await harness().request(ROTATE, {}, member.sessionToken);

    expect(early.data!.rotatePrepaidId.code).toBe('ROTATION_TOO_SOON');
    expect(onTime.data!.rotatePrepaidId.__typename).toBe('PrepaidIdRotated');
  });

  test('needs a fresh code when 2FA is on', async () => {
    const { member } = await funded('rotatetfa');
    const { secret } = await enableTwoFactor(harness(), member.sessionToken);

    const without = await harness().request(ROTATE, {}, member.sessionToken);
    const wrong = await harness().request(ROTATE, { code: '000000' }, member.sessionToken);
    const right = await harness().request(
      ROTATE,
      { code: freshTotpCode(harness(), secret) },
      member.sessionToken,
    );

    expect(without.data!.rotatePrepaidId.code).toBe('TWO_FACTOR_CODE_REQUIRED');
    expect(wrong.data!.rotatePrepaidId.code).toBe('INVALID_TWO_FACTOR_CODE');
    expect(right.data!.rotatePrepaidId.__typename).toBe('PrepaidIdRotated');
  });

  test('concurrent rotations give one new ID', async () => {
    const { member } = await funded('race');

    const results = await Promise.all(
      Array.from({ length: 5 }, () => harness().request(ROTATE, {}, member.sessionToken)),
    );

    const kinds = results.map((result) => result.data!.rotatePrepaidId.__typename);
    expect(kinds.filter((kind) => kind === 'PrepaidIdRotated')).toHaveLength(1);
    expect(kinds.filter((kind) => kind === 'RotationTooSoonError')).toHaveLength(4);
    expect(
      await harness().count(
        `SELECT count(*) FROM prepaid_id p JOIN wallet w ON w.ledger_account_id = p.ledger_account_id
          JOIN member m ON m.id = w.member_id WHERE m.username = ? AND p.kind = 'wallet' AND p.status = 'active'`,
        [member.username],
      ),
    ).toBe(1);
  });
});

describe('rotation with Asia/Tokyo time zones', () => {
  test('gives the same next time whatever the zone', async () => {
    const { member } = await funded('tokyo');
    const database = new URL(harness().config.databaseUrl!).pathname.slice(1);
    await harness().sql().query(`ALTER DATABASE "${database}" SET timezone = 'Asia/Tokyo'`);
    const previousZone = process.env.TZ;
    process.env.TZ = 'Asia/Tokyo';
    try {
      const peer = await harness().startPeer();
      const zone = await peer.orm.em.fork().getConnection().execute('SHOW timezone');
      expect(zone[0].TimeZone ?? zone[0].timezone).toBe('Asia/Tokyo');

      // The peer has a clock of its own, which no earlier test moved.
      const first = await harness().request(ROTATE, {}, member.sessionToken, peer.url);
      const firstAt = peer.services.clock.now();
      const second = await harness().request(ROTATE, {}, member.sessionToken, peer.url);
      const shown = await harness().request(ROTATABLE_AT, {}, member.sessionToken, peer.url);
      peer.services.clock.advance(24 * HOUR + 1_000);
      const next = await harness().request(ROTATE, {}, member.sessionToken, peer.url);

      const rotatableAt = second.data!.rotatePrepaidId.rotatableAt as string;
      expect(first.data!.rotatePrepaidId.__typename).toBe('PrepaidIdRotated');
      expect(second.data!.rotatePrepaidId.code).toBe('ROTATION_TOO_SOON');
      expect(rotatableAt).toMatch(/Z$/);
      expect(Math.abs(Date.parse(rotatableAt) - (firstAt + 24 * HOUR))).toBeLessThan(5_000);
      expect(shown.data!.viewer.wallet.prepaidIdRotatableAt).toBe(rotatableAt);
      expect(next.data!.rotatePrepaidId.__typename).toBe('PrepaidIdRotated');
    } finally {
      process.env.TZ = previousZone;
      await harness().sql().query(`ALTER DATABASE "${database}" RESET timezone`);
    }
  });
});
