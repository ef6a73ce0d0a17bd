/**
 * A Postgres snapshot (`pg_current_snapshot()`), used to tell whether a
 * transaction had committed when a subscriber subscribed.
 */
export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  running: Set<bigint>;
}

/** Parses the text form `xmin:xmax:xip,xip,...` of pg_snapshot. */
export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, running] = text.split(':');
  if (xmin === undefined || xmax === undefined || running === undefined) {
    throw new Error(`not a pg_snapshot: ${text}`);
  }
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    running: new Set(running === '' ? [] : running.split(',').map((xid) => BigInt(xid))),
  };
}

/**
 * Whether a committed transaction was already visible in the snapshot, which
 * is the rule of pg_visible_in_snapshot: below xmin it had ended, at or above
 * xmax it had not started, and in between it was running only if listed.
 */
export function committedBefore(xid: bigint, snapshot: Snapshot): boolean {
  if (xid < snapshot.xmin) return true;
  if (xid >= snapshot.xmax) return false;
  return !snapshot.running.has(xid);
}
