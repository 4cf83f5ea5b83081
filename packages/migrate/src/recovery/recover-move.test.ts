import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerInfo, FenceRecord, RuntimeAdapter } from '@ferry/core';
import { Journal, migrationDir } from '../journal/journal';
import type { Destination } from '../hosts/resolve-host';
import { recoverMove, type RecoveryDeps } from './recover-move';

let state: string;
beforeEach(() => (state = mkdtempSync(join(tmpdir(), 'ferry-recover-'))));
afterEach(() => rmSync(state, { recursive: true, force: true }));

/** A source journal of a move whose ferry died after freezing (and, if `fenced`, fencing) its runc container. */
function interruptedMove(fenced: boolean): void {
  const j = Journal.create(migrationDir(state, 'm1'), {
    t: 'begin',
    role: 'source',
    id: 'm1',
    runtime: 'runc',
    container: 'web',
    peer: 'h2',
    destination: { name: 'h2' } as Destination,
  });
  j.hold({ kind: 'owner', pids: [{ pid: 999_999, startTime: 1 }] });
  j.hold({ kind: 'prepared', name: 'web' });
  j.hold({ kind: 'frozen' });
  if (fenced) j.hold({ kind: 'fence', fence: { runtime: 'runc', id: 'web', kind: 'links' } as unknown as FenceRecord });
  j.append({ t: 'phase', phase: 'checkpoint' });
  j.close();
}

function fakeHost(cleanup: () => Promise<{ kept: boolean }>) {
  const calls: string[] = [];
  const adapter = {
    unfenceNetwork: async () => void calls.push('unfence'),
    resume: async () => void calls.push('resume'),
    inspect: async () => ({ ref: { id: 'web' }, state: 'running' }),
  } as unknown as RuntimeAdapter;
  const deps: RecoveryDeps = {
    stateDir: state,
    findContainer: async () => ({ adapter, container: { ref: { id: 'web' }, state: 'paused' } as ContainerInfo }),
    cleanupRemote: async () => {
      calls.push('cleanupRemote');
      const r = await cleanup();
      calls.push('cleaned');
      return r;
    },
    remoteStatus: async () => {
      throw new Error('not asked');
    },
  };
  return { deps, calls };
}

test('a fenced source comes back only after the destination was cleaned (its copy may have its links up since the fence)', async () => {
  interruptedMove(true);
  const { deps, calls } = fakeHost(async () => ({ kept: false }));
  const r = await recoverMove('m1', deps);
  expect(r.outcome).toBe('rolled-back');
  expect(calls).toEqual(['cleanupRemote', 'cleaned', 'unfence', 'resume']);
});

test('a destination out of reach keeps a fenced source frozen for CLEAN_FIRST_MS at most, and the recovery waits for its clean-up', async () => {
  jest.useFakeTimers();
  try {
    interruptedMove(true);
    let reach!: () => void;
    const { deps, calls } = fakeHost(() => new Promise((resolve) => (reach = () => resolve({ kept: false }))));
    let outcome: string | undefined;
    void recoverMove('m1', deps).then((r) => (outcome = r.outcome));
    await jest.advanceTimersByTimeAsync(4_999);
    expect(calls).toEqual(['cleanupRemote']);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(['cleanupRemote', 'unfence', 'resume']);
    expect(outcome).toBeUndefined();
    reach();
    await jest.advanceTimersByTimeAsync(0);
    expect(outcome).toBe('rolled-back');
    expect(calls.at(-1)).toBe('cleaned');
  } finally {
    jest.useRealTimers();
  }
});

test('an unfenced source does not wait for the destination', async () => {
  interruptedMove(false);
  let reach!: () => void;
  const { deps, calls } = fakeHost(() => new Promise((resolve) => (reach = () => resolve({ kept: false }))));
  const recovering = recoverMove('m1', deps);
  await new Promise((r) => setImmediate(r));
  expect(calls).toEqual(['cleanupRemote', 'resume']);
  reach();
  expect((await recovering).outcome).toBe('rolled-back');
});
