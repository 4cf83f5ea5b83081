import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK_UP_HOOK, podmanArchiveMembers } from './podman-restore';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-lo-hook-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the hook as runc does (state JSON on stdin) with a stand-in nsenter that prints its argv. */
function runHook(state: string): { status: number | null; stdout: string } {
  const fake = join(dir, 'nsenter');
  writeFileSync(fake, '#!/bin/sh\necho "$@"\n');
  chmodSync(fake, 0o755);
  const [, ...args] = LOOPBACK_UP_HOOK.args;
  const r = spawnSync(LOOPBACK_UP_HOOK.path, args, { input: `${state}\n`, encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin` } });
  return { status: r.status, stdout: r.stdout.trim() };
}

test("the hook enters the restored init's network namespace named by runc's state and brings lo up", () => {
  const state = JSON.stringify({ ociVersion: '1.0.2', id: 'web', status: 'creating', pid: 43117, bundle: '/b', annotations: { 'io.podman.pid': 'x' } });
  expect(runHook(state)).toEqual({ status: 0, stdout: '-t 43117 -n ip link set lo up' });
  expect(runHook('{"ociVersion":"1.0.2","id":"web","pid": 7,"bundle":"/b"}').stdout).toBe('-t 7 -n ip link set lo up');
});

test('without a pid in the state the hook fails instead of touching this namespace', () => {
  expect(runHook('{"id":"web"}')).toEqual({ status: 1, stdout: '' });
});

test('the spec of the archive gets the hook only for a dump with established connections', () => {
  const imagesDir = join(dir, 'images');
  mkdirSync(imagesDir);
  writeFileSync(join(imagesDir, 'inventory.img'), 'x');
  const record = { podman: { containerId: 'c', imageId: 'sha256:1', spec: { hooks: { prestart: [{ path: '/bin/true' }] } } }, checkpointedAt: new Date(0).toISOString() } as unknown as Parameters<typeof podmanArchiveMembers>[2];
  const spec = (tcpEstablished: boolean) => {
    const members = podmanArchiveMembers(imagesDir, 'web', record, (m) => join(dir, `${m}-${tcpEstablished}`), { tcpEstablished });
    return JSON.parse(readFileSync(members.find((m) => m.name === 'spec.dump')!.path, 'utf8')) as { hooks: { prestart: unknown[] } };
  };
  expect(spec(true).hooks.prestart).toEqual([LOOPBACK_UP_HOOK, { path: '/bin/true' }]);
  expect(spec(false).hooks.prestart).toEqual([{ path: '/bin/true' }]);
});
