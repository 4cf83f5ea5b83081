/**
 * Security and hostile-input checks of issue #14 that need two real hosts: the sandbox hosts (network namespaces
 * with their own sshd, PID and mount namespaces), real runc, CRIU and SSH.
 */
import { join } from 'node:path';
import { HOSTS_FILE, ROOT, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';
import { expectRolledBack, migrationsOf, removeTestContainers, startContainer, state } from './lib/containers';

jest.setTimeout(180_000);

beforeAll(() => {
  sandbox('up');
});
afterEach(() => removeTestContainers());
afterAll(() => {
  sandbox('down');
});

describe('a destination without the disk space for the move', () => {
  // A small tmpfs as the destination agent's state directory, in h2's own mount namespace.
  const SMALL = '/run/ferry-e2e-small-state';
  beforeAll(() => {
    const r = onHost('h2', ['sh', '-c', `mkdir -p ${SMALL} && mount -t tmpfs -o size=24m tmpfs ${SMALL}`]);
    expect(r.status).toBe(0);
  });
  afterAll(() => {
    onHost('h2', ['sh', '-c', `umount ${SMALL}; rmdir ${SMALL}`]);
  });

  test('is refused with ERR_PRECHECK_DISK_SPACE before anything is frozen', async () => {
    const c = startContainer(64);
    const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'stop-and-copy', '--hosts-file', HOSTS_FILE, '--agent-command', `ferry agent --state-dir ${SMALL}`]);
    expect(run.error).toMatchObject({ code: 'ERR_PRECHECK_DISK_SPACE', message: expect.stringMatching(/^h2 has \d+ MiB free in .*; this move needs about \d+ MiB$/) });
    expect(run.status).toBe(3);
    const phases = run.events.filter((e) => e.event === 'phase-start').map((e) => e.phase);
    expect(phases).not.toContain('freeze');
    await expectRolledBack(c.name);
    expect(onHost('h2', ['ls', '-A', `${SMALL}/migrations`]).stdout.trim()).toBe('');
  });
});

test('a container that arrived and leaves again takes its migration directory with it (cleanup at commit)', async () => {
  const c = startContainer(32);
  const there = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'stop-and-copy', '--hosts-file', HOSTS_FILE]);
  expect(there.error).toBeUndefined();
  expect(migrationsOf('h2', c.name)).toHaveLength(1); // its bundle lives there while it runs on h2
  const back = await ferryOn('h2', ['migrate', c.name, '--to', 'h1', '--strategy', 'stop-and-copy', '--hosts-file', HOSTS_FILE]);
  expect(back.error).toBeUndefined();
  expect(state('h1', c.name)).toMatchObject({ exists: true, state: 'running' });
  expect(migrationsOf('h2', c.name)).toEqual([]);
  // ferry gc on h1 keeps the directory the container now runs from.
  const gc = await ferryOn('h1', ['gc', '--older-than', '1s']);
  expect(gc.status).toBe(0);
  expect(migrationsOf('h1', c.name).length).toBeGreaterThanOrEqual(1);
});

/** What uid 65534 on `host` gets from every TCP listener and unix socket it can find (e2e/bin/page-prober.js). */
function probeAsNobody(host: 'h1' | 'h2'): Record<string, string> {
  const r = onHost(host, ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, join(ROOT, 'e2e', 'bin', 'page-prober.js'), '--skip-port', '22'], 30_000);
  if (r.status !== 0) throw new Error(`page-prober on ${host} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

const reached = (doors: Record<string, string>, before: Record<string, string>) =>
  Object.entries(doors).filter(([door, result]) => !(door in before) && /CONNECTED|ANSWERED/.test(result));

test('post-copy: an unprivileged local user on either host can neither read a page nor end the container mid-move (#14 items 1-2)', async () => {
  const c = startContainer(64);
  const before = { h1: probeAsNobody('h1'), h2: probeAsNobody('h2') };
  const during: Record<string, Record<string, string>> = {};
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'post-copy', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'transfer-pages' && !during.h1) {
      // While the source is held and the destination pulls pages: every door either host shows, tried and closed.
      during.h1 = probeAsNobody('h1');
      during.h2 = probeAsNobody('h2');
    }
  });
  expect(during.h1).toBeDefined();
  expect(reached(during.h1!, before.h1)).toEqual([]);
  expect(reached(during.h2!, before.h2)).toEqual([]);
  // The move itself was not disturbed: one copy, on h2, with its memory intact.
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(state('h1', c.name).exists).toBe(false);
  expect(state('h2', c.name)).toMatchObject({ exists: true, state: 'running' });
  expect(ctl('h2', 'verify', c.name)).toEqual({ verdict: 'ok' });
}, 600_000); // post-copy pages arrive slowly on a loaded machine; nothing here depends on timing
