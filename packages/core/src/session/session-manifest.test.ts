import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleSessionManifest } from '../testing/session-fixtures';
import { readSessionManifest, SESSION_MANIFEST_FILE, validateSessionManifest, writeSessionManifest, type SessionManifest } from './session-manifest';

describe('ferry-session.json', () => {
  const manifest: SessionManifest = sampleSessionManifest({
    listeningSockets: [{ path: '/tmp/tmux-0/work', dir: { path: '/tmp/tmux-0', mode: 0o700, uid: 0, gid: 0 } }],
  });

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
