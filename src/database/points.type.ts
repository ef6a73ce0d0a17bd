import { BigIntType } from '@mikro-orm/core';

/**
 * Maps a Postgres bigint of points to a JavaScript number, and fails loudly
 * instead of rounding when a value leaves the safe-integer range.
 */
export class PointsType extends BigIntType<'number'> {
  constructor() {
    super('number');
  }

  override convertToJSValue(value: string | bigint | null | undefined): number | null | undefined {
    if (value === null || value === undefined) return value;
    return toPoints(value);
  }
}

/** Converts a bigint column value to a number of points; throws beyond 2^53 - 1. */
export function toPoints(value: string | bigint | number): number {
  const points = Number(value);
  if (!Number.isSafeInteger(points)) {
    throw new RangeError(`points value ${String(value)} is outside the safe-integer range`);
  }
  return points;
}
