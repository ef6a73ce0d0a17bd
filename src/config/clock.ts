/**
 * The server's time source for rules measured in application time (TOTP
 * steps). Tests move it forward instead of sleeping; in production the offset
 * stays zero.
 */
export class Clock {
  private offsetMs = 0;

  /** Milliseconds since the Unix epoch. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Moves the clock forward, for tests. */
  advance(milliseconds: number): void {
    this.offsetMs += milliseconds;
  }
}
