import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSessionManifest, SESSION_MANIFEST_FILE, validateSessionManifest, writeSessionManifest, type SessionManifest } from './session-manifest';

describe('ferry-session.json', () => {
  const manifest: SessionManifest = {
    version: 1,
    kind: 'tmux',
    rootPid: 100,
    pids: [100, 101],
    ownPidNamespace: false,
    shellJob: false,
    terminal: 'none',
    ptys: [0],
    tcpEstablished: false,
    fileLocks: true,
    leaveRunning: false,
    tmux: { path: '/tmp/tmux-0/w', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 }, sessions: ['w'] },
    listeningSockets: [{ path: '/tmp/tmux-0/w', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 } }],
    hostname: 'h1',
    createdAt: '2026-11-27T00:00:00.000Z',
    reason: 'r',
  };

  test('round trip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-session-manifest-'));
    try {
      writeSessionManifest(dir, manifest);
      expect(readSessionManifest(dir)).toEqual(manifest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a directory without one is ERR_IMAGE_NOT_FOUND; a broken one ERR_IMAGE_CORRUPT naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-session-manifest-'));
    try {
      expect(() => readSessionManifest(dir)).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_NOT_FOUND' }));
      writeFileSync(join(dir, SESSION_MANIFEST_FILE), '{nope');
      expect(() => readSessionManifest(dir)).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_CORRUPT' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => validateSessionManifest({ ...manifest, version: 2 })).toThrow(/version 2/);
    expect(() => validateSessionManifest({ ...manifest, terminal: 'tty' })).toThrow(/unknown terminal/);
    expect(() => validateSessionManifest({ ...manifest, pids: [0] })).toThrow(/pids/);
    expect(() => validateSessionManifest({ ...manifest, ptys: undefined })).toThrow(/ptys/);
    expect(() => validateSessionManifest({ ...manifest, tmux: undefined })).toThrow(/tmux.path/);
    expect(() => validateSessionManifest({ ...manifest, listeningSockets: [{ path: 'rel' }] })).toThrow(/listeningSockets/);
    expect(() => validateSessionManifest({ ...manifest, kind: 'screen', tmux: undefined })).toThrow(/screen.id/);
  });
});
