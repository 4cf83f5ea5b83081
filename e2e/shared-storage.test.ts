/**
 * ferry migrate --shared-storage between the sandbox hosts, which see the same /tmp (e2e/sandbox-hosts.md): nothing
 * of the bundle travels, the destination restores from the source's bundle in place. The bundle names its rootfs as
 * `runc spec` writes it, relative ("rootfs"): the destination gets no copy of the bundle's config.json, and a
 * relative root must still mean the source bundle's rootfs there (it used to resolve against the destination's empty
 * migration directory: `runc restore: invalid rootfs`, rolled back). stop-and-copy also restores while the frozen
 * source still occupies its cgroup, which the restore must not join: the cgroup fix-up needs a config.json in the
 * destination's bundle, which shared storage did not give it (`runc restore: container's cgroup unexpectedly frozen`).
 */
import { HOSTS_FILE, ferryOn, sandbox } from './lib/sandbox';
import { connectClient, expectMovedWithConnection, removeTestContainers, startContainer, state } from './lib/containers';

jest.setTimeout(240_000);

beforeAll(() => {
  sandbox('up');
});
afterEach(() => removeTestContainers());
afterAll(() => {
  sandbox('down');
});

test.each([
  ['hash-pre-copy', 'a relative root', ['--rootfs-in-bundle']],
  ['stop-and-copy', 'a relative root', ['--rootfs-in-bundle']],
  ['stop-and-copy', 'an absolute root', []],
])('%s: a bundle with %s moves on shared storage, its TCP connection kept', async (strategy, _root, extra) => {
  const c = startContainer(16, false, 2000, extra);
  const client = connectClient(c);
  await client.waitFor(/tick \d+/);
  const before = state('h1', c.name).workload!.counter;

  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', strategy, '--shared-storage', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(run.report).toMatchObject({ container: c.name, destination: 'h2', strategy });
  const phases = run.events.map((e) => e.phase).filter(Boolean);
  expect(phases).toContain('restore');
  expect(phases).not.toContain('copy-bundle'); // shared: the bundle stayed where it is

  await expectMovedWithConnection(c.name, client, before, 20_000);
});
