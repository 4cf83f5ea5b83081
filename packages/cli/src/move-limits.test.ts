import { isFerryError } from '@ferry/core';
import { limitsFromArgs, parseBandwidth, parseDuration } from './move-limits';

it.each([
  ['500ms', 500],
  ['2s', 2000],
  ['1.5m', 90_000],
])('duration %s is %d ms', (text, ms) => expect(parseDuration(text, '--max-downtime')).toBe(ms));

it.each([
  ['50M', 50 * 2 ** 20],
  ['50MiB/s', 50 * 2 ** 20],
  ['512k', 512 * 1024],
  ['1G', 2 ** 30],
  ['400Mbit', 50e6],
  ['1gbit/s', 125e6],
  ['100000', 100000],
])('bandwidth %s is %d bytes/s', (text, bytes) => expect(parseBandwidth(text)).toBe(bytes));

it.each(['', 'fast', '-5M', '1K', '0', '5 parsecs', 'NaNM'])('bandwidth %p is refused as bad input with a hint', (text) => {
  let err: unknown;
  try {
    parseBandwidth(text);
  } catch (e) {
    err = e;
  }
  expect(isFerryError(err, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
  expect((err as { hint?: string }).hint).toMatch(/--bandwidth 50M/);
});

it('sets the convergence target from --max-downtime and sends stop-and-copy images over the capped link', () => {
  const limits = limitsFromArgs({ 'dry-run': false, 'max-downtime': '600ms', bandwidth: '8M' });
  expect(limits).toMatchObject({ maxDowntimeMs: 600, bandwidthBytesPerSec: 8 << 20, streamPages: false });
  expect(limits.convergence?.targetFrozenSendMs).toBe(200);
  expect(limitsFromArgs({ 'dry-run': true })).toEqual({});
});
