/**
 * ferry migrate of LXC containers between the two sandbox hosts (each with its own /var/lib/lxc), with real LXC,
 * CRIU and SSH: memory, counter and a TCP connection from the LAN survive both strategies; `ferry ps` shows runc and LXC side by side; a
 * configuration CRIU cannot restore is refused before anything is frozen; a failed restore rolls back.
 */
import { join } from 'node:path';
import { startNetnsTcpClient, waitFor, type NetnsTcpClient } from '@ferry/core/testing';
import { CONTAINER_CTL, FAULT_BIN, HOSTS_FILE, LAN_NETNS, SANDBOX_DIR, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';
import { migrationsOf } from './lib/containers';

jest.setTimeout(180_000);

const LXC_CTL = join(__dirname, 'bin', 'lxc-ctl.js');

interface State {
  exists: boolean;
  state?: string;
  pid?: number;
  dir?: string;
  workload?: { counter: number };
}

let seq = 0;
const containers: [host: 'h1' | 'h2', name: string][] = [];
const clients: NetnsTcpClient[] = [];
const PORT = 8080;

beforeAll(() => {
  sandbox('up');
});
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
  for (const [host, name] of containers.splice(0)) onHost(host, ['node', LXC_CTL, 'remove', name]);
});
afterAll(() => {
  sandbox('down');
});

function lxc<T = Record<string, unknown>>(host: 'h1' | 'h2', ...args: string[]): T {
  const r = onHost(host, ['node', LXC_CTL, ...args]);
  if (r.status !== 0) throw new Error(`lxc-ctl ${args.join(' ')} on ${host} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

/**
 * An LXC container on h1 for one test (removed from both hosts after it): a veth on the host's lxcbr0, which the
 * sandbox plugs into the LAN, with its own address, and the workload serving TCP on PORT.
 */
function startContainer(memMib = 64, extraConfig: string[] = []): { name: string; address: string } {
  const name = `lxce2e-${process.pid}-${++seq}`;
  const address = `10.77.0.${100 + seq}`;
  containers.push(['h1', name], ['h2', name]);
  lxc('h1', 'start', name, '--mem-mib', String(memMib), '--dirty-pages-per-sec', '2000', '--address', `${address}/24`, '--port', String(PORT), ...extraConfig.flatMap((l) => ['--extra-config', l]));
  return { name, address };
}

const state = (host: 'h1' | 'h2', name: string) => lxc<State>(host, 'state', name);

/** The source runs (not frozen) and keeps counting; the destination has no container and no migration files. */
async function expectRolledBack(name: string): Promise<void> {
  const source = state('h1', name);
  expect(source).toMatchObject({ exists: true, state: 'running' });
  const counter = source.workload!.counter;
  await waitFor('the source to keep counting', () => (state('h1', name).workload?.counter ?? 0) > counter + 3, 10_000, 100);
  await waitFor('a clean destination', () => !state('h2', name).exists && migrationsOf('h2', name).length === 0, 15_000, 200);
}

test.each(['stop-and-copy', 'hash-pre-copy', 'post-copy'])('%s: memory, counter and an established TCP connection survive the move, container directory included', async (strategy) => {
  const { name, address } = startContainer(64);
  // A client on the LAN, outside both hosts, holds one TCP connection throughout.
  const client = startNetnsTcpClient(LAN_NETNS, address, PORT);
  clients.push(client);
  await client.waitFor(/tick \d+/);
  client.send('before');
  await client.waitFor(/echo before/);
  const before = state('h1', name).workload!.counter;

  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--strategy', strategy, '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(run.report).toMatchObject({ container: name, runtime: 'lxc', destination: 'h2', strategy });
  expect(run.report!.downtimeMs).toBeGreaterThan(0);
  expect(run.report!.bytesSent).toBeGreaterThan(64 * 1024 * 1024);
  const phases = run.events.map((e) => e.phase).filter(Boolean);
  expect(phases).toEqual(expect.arrayContaining(['copy-bundle', 'freeze', 'checkpoint', 'transfer-images', 'restore', 'commit']));
  if (strategy === 'post-copy') {
    expect(phases).toContain('transfer-pages');
    expect(run.report!.bytesSentFrozen).toBeLessThan(8 * 1024 * 1024);
  }
  if (strategy === 'hash-pre-copy') {
    // Rounds while it ran; the frozen step sent only what changed since the last one: well under the 64 MiB a
    // stop-and-copy sends frozen. (How much less depends on how long the last round took: 20 MiB under CI load.)
    expect(phases).toEqual(expect.arrayContaining(['precopy', 'final-round']));
    expect(run.report!.bytesSentFrozen).toBeLessThan(32 * 1024 * 1024);
  }

  // Moved: gone from h1 (directory and rootfs destroyed), running from h2's own /var/lib/lxc.
  expect(state('h1', name).exists).toBe(false);
  expect(onHost('h1', ['test', '-e', `/var/lib/lxc/${name}`]).status).toBe(1);
  const moved = state('h2', name);
  expect(moved).toMatchObject({ exists: true, state: 'running', dir: `/var/lib/lxc/${name}` });
  await waitFor('the counter to continue on h2', () => (state('h2', name).workload?.counter ?? 0) > before + 5, 10_000, 100);
  expect(lxc('h2', 'verify', name)).toEqual({ verdict: 'ok' });
  // LXC itself knows the restored container.
  expect(onHost('h2', ['lxc-info', '-n', name, '-s']).stdout).toMatch(/RUNNING/);

  // The same TCP connection still carries data both ways.
  const ticksBefore = client.lastTick();
  client.send('after');
  await client.waitFor(/echo after/);
  await waitFor('more ticks after the move', () => client.lastTick() > ticksBefore + 3);
  expect(client.process.exitCode).toBeNull();
});

test('ferry ps lists runc and LXC containers together, with runtime and state', async () => {
  const lxcName = startContainer(16).name;
  const runcName = `lxce2e-runc-${process.pid}`;
  ctl('h1', 'start', runcName, '--mem-mib', '16', '--address', '10.77.0.250/24');
  try {
    const run = await ferryOn('h1', ['ps']);
    expect(run.status).toBe(0);
    const listed = JSON.parse(run.stdout) as { containers: { ref: { runtime: string; id: string }; state: string }[] };
    const mine = listed.containers.filter((c) => [lxcName, runcName].includes(c.ref.id)).map((c) => [c.ref.runtime, c.ref.id, c.state]);
    expect(mine.sort()).toEqual([
      ['lxc', lxcName, 'running'],
      ['runc', runcName, 'running'],
    ]);
  } finally {
    onHost('h1', ['node', CONTAINER_CTL, 'remove', runcName]);
  }
});

test('a container CRIU cannot restore (lxc.tty.max = 1) is refused before anything is frozen', async () => {
  const { name } = startContainer(16, ['lxc.tty.max = 1']);
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
  expect(run.error?.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
  expect(run.error?.message).toMatch(/lxc.tty.max/);
  expect(run.error?.hint).toMatch(/lxc.tty.max = 0/);
  expect(run.status).toBe(3);
  expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)/);
  // Refused before connecting: no phase ran, nothing was frozen.
  expect(run.events.filter((e) => e.event === 'phase-start')).toEqual([]);
  await expectRolledBack(name);
});

test('the destination restore fails: the source runs again and the destination is clean', async () => {
  const { name } = startContainer(32);
  // This checkout's ferry (SANDBOX_DIR/bin), with the faulty lxc-checkpoint first.
  const agent = ['--agent-command', `env FERRY_FAULT=restore-fails PATH=${FAULT_BIN}:${SANDBOX_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ferry agent`];
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE, ...agent]);
  expect(run.status).not.toBe(0);
  expect(run.error?.code).toMatch(/^ERR_(CRIU|RUNTIME)_/);
  expect(run.error?.hint).toBeTruthy();
  await expectRolledBack(name);
  expect(onHost('h2', ['test', '-e', `/var/lib/lxc/${name}`]).status).toBe(1);
  expect(lxc('h1', 'verify', name)).toEqual({ verdict: 'ok' });
});

test('the SSH connection is cut while the restored copy pulls its memory (post-copy): the page link resumes, the container moves intact', async () => {
  const { name } = startContainer(128);
  let cut = false;
  sandbox('shape', '200mbit');
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--strategy', 'post-copy', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'transfer-pages' && !cut) {
      cut = true;
      // Every sshd session process on h2: the agent's connection and the page link's carrier.
      onHost('h2', ['pkill', '-KILL', '-f', '^sshd: root']);
    }
  }).finally(() => sandbox('shape', 'off'));
  expect(cut).toBe(true);
  expect(run.status).toBe(0);
  expect(run.events.some((e) => e.event === 'warning' && /page link .* broke; resuming/.test(String(e.message)))).toBe(true);
  expect(onHost('h1', ['test', '-e', `/var/lib/lxc/${name}`]).status).toBe(1);
  expect(lxc('h2', 'verify', name)).toEqual({ verdict: 'ok' });
});

describe('the SSH connection is cut: the source runs again with its memory, the destination is clean', () => {
  test.each([
    ['stop-and-copy', 'checkpoint'], // while the dump streams the memory to h2's page server
  ])('%s, during %s', async (strategy, phase) => {
    const { name } = startContainer(128);
    let cut = false;
    // A slow link makes the phase last long enough to be cut in the middle, every time.
    sandbox('shape', '200mbit');
    const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--strategy', strategy, '--hosts-file', HOSTS_FILE], (e) => {
      if (e.event === 'phase-start' && e.phase === phase && !cut) {
        cut = true;
        // The destination's sshd session processes (not its listener, pid 1 of the host).
        onHost('h2', ['pkill', '-KILL', '-f', 'sshd: root@notty']);
      }
    }).finally(() => sandbox('shape', 'off'));
    expect(cut).toBe(true);
    if (!run.error) throw new Error(`no error: status ${run.status}\n${run.stderr}\n${run.stdout}`);
    expect(run.status).not.toBe(0);
    expect(run.error.hint).toBeTruthy();
    await expectRolledBack(name);
    expect(lxc('h1', 'verify', name)).toEqual({ verdict: 'ok' });
  });
});
