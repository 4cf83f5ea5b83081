import { spawn } from 'node:child_process';
import { guardChild } from './child-deadline';
import { lazyReadiness } from './lazy-ready';

/** Runs `sleep 30` under a 300 ms deadline; `lift` settles (or not) before it; the test ends the child itself. */
async function sleeper(lift?: Promise<unknown>): Promise<{ timedOut: boolean; signal: NodeJS.Signals | null }> {
  const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  const guard = guardChild(child, { timeoutMs: 300, killGraceMs: 100, liftDeadline: lift });
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // Longer than the deadline: a deadline still armed has killed the child by then.
  const fallback = setTimeout(() => child.kill('SIGTERM'), 1_000);
  const signal = await ended;
  clearTimeout(fallback);
  guard.finish();
  return { timedOut: guard.timedOut, signal };
}

describe('guardChild deadline', () => {
  test('kills the child when the deadline passes', async () => {
    expect(await sleeper()).toEqual({ timedOut: true, signal: 'SIGKILL' });
  });

  test('a lifted deadline (a lazy dump whose page server is ready) no longer kills it', async () => {
    const ready = lazyReadiness({ onReady: () => undefined });
    ready.onReady();
    expect(await sleeper(ready.lifted)).toEqual({ timedOut: false, signal: 'SIGTERM' });
  });

  test('readiness that never comes leaves the deadline armed', async () => {
    const ready = lazyReadiness({ onReady: () => undefined });
    expect(await sleeper(ready.lifted)).toEqual({ timedOut: true, signal: 'SIGKILL' });
  });
});

test('lazyReadiness passes readiness on and has no promise without a lazy dump', () => {
  let called = 0;
  lazyReadiness({ onReady: () => called++ }).onReady();
  expect(called).toBe(1);
  expect(lazyReadiness(undefined).lifted).toBeUndefined();
});
