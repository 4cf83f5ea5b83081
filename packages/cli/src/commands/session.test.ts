import type { SessionCheckpointResult, SessionManifest, SessionRestoreResult } from '@ferry/core';
import { sampleSessionManifest } from '@ferry/core/testing';
import { renderSessionCheckpoint, renderSessionRestore, sessionCheckpointJson, sessionRestoreJson } from './session';

const manifest: SessionManifest = sampleSessionManifest();

const checkpoint: SessionCheckpointResult = {
  imagesDir: '/tmp/demo',
  manifest,
  plan: { kind: 'tmux', shellJob: false, terminal: 'none', reason: manifest.reason },
  logPath: '/tmp/demo/dump.log',
  stats: { frozenMs: 33, pagesWritten: 419, imageBytes: 1_900_000, totalMs: 2130 },
  detachedClients: [{ name: '/dev/pts/1', pid: 99, session: 'main' }],
  pidsStillInUse: [],
  warnings: ['the tmux server also holds session other: a checkpoint takes the whole server'],
};

test('checkpoint report: what, kind and why, timings, detached clients, warnings, how to restore', () => {
  expect(renderSessionCheckpoint(checkpoint)).toBe(
    [
      'checkpointed tmux server /tmp/tmux-0/work (pid 8086; sessions main) into /tmp/demo',
      '  kind          tmux: its sessions and terminals are all inside the tree',
      '  frozen        33 ms',
      '  dump time     2130 ms (419 pages written)',
      '  image size    1.8 MiB',
      '  detached      /dev/pts/1',
      '  warning: the tmux server also holds session other: a checkpoint takes the whole server',
      '  the session was stopped; bring it back with `ferry session restore /tmp/demo`',
      '',
    ].join('\n'),
  );
  expect(JSON.parse(sessionCheckpointJson(checkpoint))).toMatchObject({ event: 'session-checkpoint', kind: 'tmux', rootPid: 8086, stats: { frozenMs: 33 } });
});

test('restore reports say how to reach the session', () => {
  const tmux: SessionRestoreResult = { manifest, pid: 8086, logPath: '/tmp/demo/restore.log', restoreMs: 78, tmuxSessions: ['main'], warnings: [] };
  expect(renderSessionRestore('/tmp/demo', tmux)).toMatch(/attach with {3}tmux -S \/tmp\/tmux-0\/work attach -t main\n$/);
  const job: SessionRestoreResult = { ...tmux, manifest: { ...manifest, kind: 'shell-job', terminal: 'caller', tmux: undefined } };
  expect(renderSessionRestore('/tmp/demo', job)).toMatch(/the job runs in the background of this terminal/);
  const screen: SessionRestoreResult = { ...tmux, manifest: { ...manifest, kind: 'screen', tmux: undefined, screen: { id: '8386.scr1' } } };
  expect(renderSessionRestore('/tmp/demo', screen)).toMatch(/screen -r 8386\.scr1/);
  expect(JSON.parse(sessionRestoreJson('/tmp/demo', tmux))).toMatchObject({ event: 'session-restore', pid: 8086, tmuxSessions: ['main'] });
});
