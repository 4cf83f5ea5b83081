/**
 * Security and hostile-input checks of issue #14 that need two real hosts: the sandbox hosts (network namespaces
 * with their own sshd, PID and mount namespaces), real runc, CRIU and SSH.
 */
import { HOSTS_FILE, ferryOn, onHost, sandbox } from './lib/sandbox';
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
