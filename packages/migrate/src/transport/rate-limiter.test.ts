import { BURST_MS, RateLimiter, type Clock } from './rate-limiter';

function fakeClock(): Clock & { t: number } {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

it('spaces writes so the bytes over the whole stretch stay under the cap', async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(1 << 20, clock);
  for (let i = 0; i < 64; i++) await limiter.take(256 << 10); // 16 MiB in quarter-MiB writes
  // 16 MiB at 1 MiB/s: 16 s, less the burst the last write may run ahead.
  expect(clock.t).toBeGreaterThanOrEqual(16_000 - BURST_MS);
  expect(clock.t).toBeLessThanOrEqual(16_000);
});

it('does not make up for idle time with a burst beyond the allowance', async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(1 << 20, clock);
  await limiter.take(1 << 20);
  clock.t += 10_000; // idle
  const before = clock.t;
  await limiter.take(1 << 20);
  await limiter.take(1 << 20);
  expect(clock.t - before).toBeGreaterThanOrEqual(2000 - BURST_MS);
});

it('lets a small write through at once', async () => {
  const clock = fakeClock();
  await new RateLimiter(1 << 20, clock).take(1024);
  expect(clock.t).toBe(0);
});

it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses a rate of %p', (r) => {
  expect(() => new RateLimiter(r)).toThrow(RangeError);
});
