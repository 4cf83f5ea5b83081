import type { ContainerInfo } from '@ferry/core';
import { boundedAll, planDrain } from './plan-drain';

const ct = (id: string, state: ContainerInfo['state'] = 'running'): ContainerInfo => ({ ref: { runtime: 'runc', id }, state });

test('running containers spread round-robin by name; others are skipped with the reason', () => {
  const plan = planDrain([ct('web'), ct('db'), ct('old', 'stopped'), ct('cache'), ct('paused', 'paused')], ['h2', 'h3']);
  expect(plan.moves).toEqual([
    { container: 'cache', runtime: 'runc', destination: 'h2' },
    { container: 'db', runtime: 'runc', destination: 'h3' },
    { container: 'web', runtime: 'runc', destination: 'h2' },
  ]);
  expect(plan.skipped).toEqual([
    { container: 'old', runtime: 'runc', reason: 'stopped, not running' },
    { container: 'paused', runtime: 'runc', reason: 'paused, not running' },
  ]);
  expect(() => planDrain([ct('a')], [])).toThrow();
});

test('boundedAll keeps at most `limit` tasks in flight and reports every outcome in order', async () => {
  let inFlight = 0;
  let peak = 0;
  const results = await boundedAll([1, 2, 3, 4, 5], 2, async (n) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 5 * n));
    inFlight--;
    if (n === 3) throw new Error('three failed');
    return n * 10;
  });
  expect(peak).toBe(2);
  expect(results.map((r) => (r.ok ? r.value : (r.error as Error).message))).toEqual([10, 20, 'three failed', 40, 50]);
});
