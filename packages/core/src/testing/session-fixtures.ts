import type { SessionManifest } from '../session/session-manifest';

/** A valid ferry-session.json of a tmux session, for tests of code that reads or renders one. */
export function sampleSessionManifest(overrides: Partial<SessionManifest> = {}): SessionManifest {
  return {
    version: 1,
    kind: 'tmux',
    rootPid: 8086,
    pids: [8086, 8087],
    ownPidNamespace: false,
    shellJob: false,
    terminal: 'none',
    ptys: [0],
    tcpEstablished: false,
    fileLocks: true,
    leaveRunning: false,
    tmux: { path: '/tmp/tmux-0/work', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 }, sessions: ['main'] },
    listeningSockets: [],
    hostname: 'vm',
    createdAt: '2026-11-27T13:34:12.656Z',
    reason: 'its sessions and terminals are all inside the tree',
    ...overrides,
  };
}
