/**
 * --bandwidth: a cap on the bytes per second ferry writes to the destination. A virtual clock: each write is given
 * its slot after the previous one's, and waits until the slot starts (less a small burst allowance, so a writer is
 * not woken for every chunk). Over any stretch longer than the burst, the rate stays at or under the cap.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** How far ahead of its slot a write may go: a tenth of a second's worth of bytes. */
export const BURST_MS = 100;

export class RateLimiter {
  private nextFreeMs: number | undefined;

  constructor(
    readonly bytesPerSec: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(bytesPerSec > 0) || !Number.isFinite(bytesPerSec)) throw new RangeError(`bytesPerSec must be a positive number, got ${bytesPerSec}`);
  }

  /** Resolves when `bytes` may be written. */
  async take(bytes: number): Promise<void> {
    const now = this.clock.now();
    const start = Math.max(now, this.nextFreeMs ?? now);
    this.nextFreeMs = start + (bytes * 1000) / this.bytesPerSec;
    const wait = this.nextFreeMs - BURST_MS - now;
    if (wait > 0) await this.clock.sleep(wait);
  }
}
