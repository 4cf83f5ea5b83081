/**
 * ferry migrate of Docker containers between the two sandbox hosts, each running its own dockerd (docker-hosts.ts),
 * with real CRIU, runc, containerd and SSH. The image exists on h1 only: the migration carries it to h2.
 * The same checks as migrate.test.ts (memory verified by the workload, the counter continues, nothing left on the
 * source). Established TCP connections move only where runc's CRIU configuration (/etc/criu/runc.conf, private to each
 * sandbox host) turns on tcp-established: Docker's restore cannot pass the flag itself (docs/docker.md).
 */
import { join } from 'node:path';
import { waitFor } from '@ferry/core/testing';
import { HOSTS_FILE, ROOT, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';
import { importTestImage, startHostDockerd, type HostDockerd } from './lib/docker-hosts';

jest.setTimeout(240_000);

const IMAGE = 'ferry-dk-e2e:1';
const daemons: Partial<Record<'h1' | 'h2', HostDockerd>> = {};
let seq = 0;

beforeAll(async () => {
  sandbox('up');
  daemons.h1 = await startHostDockerd('h1');
  daemons.h2 = await startHostDockerd('h2');
  importTestImage(daemons.h1, IMAGE);
});
afterAll(async () => {
  for (const d of Object.values(daemons)) await d?.stop();
  sandbox('down');
});
afterEach(() => {
  for (const host of ['h1', 'h2'] as const) {
    // Committed migrations keep their record on the destination; the next test starts without any.
    onHost(host, ['sh', '-c', 'rm -rf /var/lib/ferry/migrations/*']);
    const ids = daemons[host]?.docker(['ps', '-aq', '--filter', 'name=dk-e2e-']).split('\n').filter(Boolean) ?? [];
    if (ids.length > 0) daemons[host]!.docker(['rm', '-f', ...ids]);
  }
});

function d(host: 'h1' | 'h2'): HostDockerd {
  return daemons[host]!;
}

function runContainer(memMib: number, extra: string[] = [], options: { writesFiles?: boolean; tcpInside?: boolean } = {}): string {
  const name = `dk-e2e-${process.pid}-${++seq}`;
  const workload = ['/usr/bin/workload', '--state', '/tmp/state', '--mem-mib', String(memMib), '--dirty-pages-per-sec', '2000'];
  if (options.tcpInside) {
    // Both ends of an established connection in the container (--network none: nothing else can reach it): the
    // workload serves ticks on 8080, nc reads them into /tmp/nc.out (its stdin a pipe that stays open).
    const shell = `${workload.join(' ')} --port 8080 & sleep 1; sleep 1000000 | /bin/nc 127.0.0.1 8080 > /tmp/nc.out`;
    d('h1').docker(['run', '-d', '--name', name, '--network', 'none', ...extra, IMAGE, '/bin/sh', '-c', shell]);
    return name;
  }
  // writesFiles: a file in the container's writable layer, and one the workload holds open (fd 3), which CRIU can
  // restore on h2 only if the layer came along.
  const command = options.writesFiles
    ? ['/bin/sh', '-c', `echo hello > /tmp/greeting; echo 1234567 > /tmp/held; exec ${workload.join(' ')} 3>>/tmp/held`]
    : workload;
  d('h1').docker(['run', '-d', '--name', name, '--network', 'none', ...extra, IMAGE, ...command]);
  return name;
}

interface Seen {
  exists: boolean;
  status?: string;
  pid?: number;
  counter?: number;
}

/** The container as the host's dockerd sees it, with the workload's counter read through its root. */
function seen(host: 'h1' | 'h2', name: string): Seen {
  const r = onHost(host, ['/usr/bin/docker', 'inspect', '-f', '{{.State.Status}} {{.State.Pid}}', name]);
  if (r.status !== 0) return { exists: false };
  const [status, pidText] = r.stdout.trim().split(' ');
  const pid = Number(pidText);
  const state = pid > 0 ? onHost(host, ['cat', `/proc/${pid}/root/tmp/state`]).stdout : '';
  const counter = /counter=(\d+)/.exec(state)?.[1];
  return { exists: true, status, pid, ...(counter ? { counter: Number(counter) } : {}) };
}

/** The workload checks every page of its memory (SIGUSR1) and writes its verdict next to its state file. */
function verify(host: 'h1' | 'h2', name: string): string {
  const { pid } = seen(host, name);
  const r = onHost(host, ['sh', '-c', 'rm -f "$1"; kill -USR1 "$2"; for i in $(seq 200); do [ -s "$1" ] && exec cat "$1"; sleep 0.1; done; echo timeout', 'sh', `/proc/${pid}/root/tmp/state.verify`, String(pid)]);
  return /verify=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout;
}

function hasImage(host: 'h1' | 'h2'): boolean {
  return onHost(host, ['/usr/bin/docker', 'image', 'inspect', IMAGE]).status === 0;
}

function migrationDirs(host: 'h1' | 'h2'): string[] {
  return onHost(host, ['sh', '-c', 'ls /var/lib/ferry/migrations 2>/dev/null || true']).stdout.split('\n').filter(Boolean);
}

async function counting(host: 'h1' | 'h2', name: string): Promise<number> {
  return waitFor(`${name} counting on ${host}`, () => {
    const c = seen(host, name).counter ?? 0;
    return c >= 2 ? c : undefined;
  }, 20_000, 100);
}

/** The source runs (not paused) and counts on; the destination has no container, no migration files. */
async function expectRolledBack(name: string): Promise<void> {
  const source = seen('h1', name);
  expect(source).toMatchObject({ exists: true, status: 'running' });
  await waitFor('the source to keep counting', () => (seen('h1', name).counter ?? 0) > (source.counter ?? 0) + 3, 10_000, 100);
  await waitFor('a clean destination', () => !seen('h2', name).exists && migrationDirs('h2').length === 0, 15_000, 200).catch((err: Error) => {
    const left = onHost('h2', ['sh', '-c', 'cat /var/lib/ferry/migrations/*/journal; ls -laR /var/lib/ferry/migrations | head -30']).stdout;
    throw new Error(`${err.message}: h2 has ${JSON.stringify(seen('h2', name))}, migrations:\n${left}`);
  });
}

test('the SSH connection is cut after the image went over: rolled back, and the loaded image is gone from h2', async () => {
  expect(hasImage('h2')).toBe(false);
  const name = runContainer(128);
  await counting('h1', name);
  let cut = false;
  sandbox('shape', '200mbit');
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'transfer-images' && !cut) {
      cut = true;
      onHost('h2', ['pkill', '-KILL', '-f', 'sshd: root@notty']);
    }
  }).finally(() => sandbox('shape', 'off'));
  expect(cut).toBe(true);
  if (!run.error) throw new Error(`no error: status ${run.status}\n${run.stderr}\n${run.stdout}`);
  expect(run.error.code).toMatch(/^ERR_TRANSPORT_/);
  expect(run.error.hint).toBeTruthy();
  await expectRolledBack(name);
  await waitFor('the image the migration loaded to be removed from h2', () => !hasImage('h2'), 15_000, 200);
});

test('stop-and-copy (auto): the image and the writable layer travel, memory and counter survive, nothing is left on h1', async () => {
  const name = runContainer(64, [], { writesFiles: true });
  const before = await counting('h1', name);
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  // Auto picks stop-and-copy although both hosts have lazy pages: Docker cannot restore with them.
  expect(run.report).toMatchObject({ container: name, runtime: 'docker', destination: 'h2', strategy: 'stop-and-copy' });
  expect(run.report!.bytesSent).toBeGreaterThan(64 * 1024 * 1024);
  const phases = run.events.filter((e) => e.event === 'phase-end');
  expect(phases.map((e) => e.phase)).toEqual(expect.arrayContaining(['copy-image', 'freeze', 'checkpoint', 'transfer-images', 'restore', 'commit']));
  expect(phases.find((e) => e.phase === 'copy-image')!.bytes).toBeGreaterThan(1024 * 1024); // h2 lacked the image

  expect(seen('h1', name).exists).toBe(false);
  const moved = seen('h2', name);
  expect(moved).toMatchObject({ exists: true, status: 'running' });
  await waitFor('the counter to continue on h2', () => (seen('h2', name).counter ?? 0) > before + 5, 10_000, 100);
  expect(verify('h2', name)).toBe('ok');
  const pid = seen('h2', name).pid!;
  expect(onHost('h2', ['cat', `/proc/${pid}/root/tmp/greeting`]).stdout).toBe('hello\n');
  expect(onHost('h2', ['readlink', `/proc/${pid}/fd/3`]).stdout.trim()).toBe('/tmp/held');
  // h2's dockerd owns it: same image by name, and its own CLI can stop it.
  expect(d('h2').docker(['inspect', '-f', '{{.Config.Image}}', name]).trim()).toBe(IMAGE);
  expect(hasImage('h2')).toBe(true);
  expect(migrationDirs('h2')).toHaveLength(1); // the committed migration's record stays, like runc's
});

test('the SSH connection is cut while h2 restores: the copy there is removed, the source runs on', async () => {
  const name = runContainer(64);
  await counting('h1', name);
  let cut = false;
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'restore' && !cut) {
      cut = true;
      onHost('h2', ['pkill', '-KILL', '-f', 'sshd: root@notty']);
    }
  });
  expect(cut).toBe(true);
  expect(run.status).not.toBe(0);
  expect(run.error?.code).toMatch(/^ERR_TRANSPORT_/);
  // The agent outlives its connection, waits for the restore it started and removes what it made.
  await waitFor('no copy on h2', () => !seen('h2', name).exists, 30_000, 300);
  await expectRolledBack(name);
});

test('the destination restore fails (its name got taken on h2 meanwhile): rolled back, the other container untouched', async () => {
  expect(hasImage('h2')).toBe(true); // from the test before: no image transfer this time
  const name = runContainer(32);
  await counting('h1', name);
  let taken = false;
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'checkpoint' && !taken) {
      taken = true;
      d('h2').docker(['create', '--name', name, '--network', 'none', IMAGE, '/bin/true']);
    }
  });
  expect(taken).toBe(true);
  expect(run.status).not.toBe(0);
  expect(run.error?.code).toBe('ERR_RUNTIME_NAME_TAKEN');
  expect(run.error?.hint).toBeTruthy();
  expect(run.events.find((e) => e.event === 'phase-end' && e.phase === 'copy-image')?.bytes).toBe(0);
  // The container that took the name is not ferry's to remove; the migration's own traces are gone.
  expect(seen('h2', name)).toMatchObject({ exists: true, status: 'created' });
  d('h2').docker(['rm', '-f', name]);
  await expectRolledBack(name);
});

describe('refused before anything is frozen', () => {
  test.each([
    ['a terminal (-t)', ['-t'], ['--strategy', 'stop-and-copy'], 'ERR_PRECHECK_UNSUPPORTED_CONFIG', /terminal/],
    ['a host bind mount', ['-v', '/tmp:/host-tmp'], [], 'ERR_PRECHECK_UNSUPPORTED_CONFIG', /bind-mounts the host directory \/tmp/],
    ['post-copy', [], ['--strategy', 'post-copy'], 'ERR_PRECHECK_FEATURE_MISSING', /post-copy/],
  ])('%s', async (_what, runArgs, migrateArgs, code, message) => {
    const name = runContainer(16, runArgs);
    await counting('h1', name);
    const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE, ...migrateArgs]);
    expect(run.error?.code).toBe(code);
    expect(run.error?.message).toMatch(message);
    expect(run.error?.hint).toBeTruthy();
    expect(run.status).toBe(3);
    expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)/);
    expect(run.events.some((e) => e.phase === 'freeze')).toBe(false);
    expect(seen('h1', name)).toMatchObject({ exists: true, status: 'running' });
    expect(seen('h2', name).exists).toBe(false);
  });
});

test('a user network h2 lacks: refused before the freeze, naming it (its restore would fail at create)', async () => {
  // A user bridge network (no bridge device is plugged anywhere: --bridge=none, --iptables=false), on h1 only.
  const net = `dk-e2e-net-${process.pid}`;
  d('h1').docker(['network', 'create', '--driver', 'bridge', '--subnet', '10.199.0.0/24', net]);
  const name = `dk-e2e-${process.pid}-${++seq}`;
  try {
    d('h1').docker(['run', '-d', '--name', name, '--network', net, '--ip', '10.199.0.5', IMAGE, '/usr/bin/workload', '--state', '/tmp/state', '--mem-mib', '16']);
    await counting('h1', name);
    const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
    expect(run.error?.code).toBe('ERR_PRECHECK_INCOMPATIBLE');
    expect(run.error?.message).toContain(`h2 has no network ${net}`);
    expect(run.error?.hint).toMatch(/Create the network on h2/);
    expect(run.events.some((e) => e.phase === 'freeze')).toBe(false);
    await expectRolledBack(name);
  } finally {
    d('h1').docker(['rm', '-f', name]);
    d('h1').docker(['network', 'rm', net]);
  }
});

describe('established TCP connections and runc\'s CRIU configuration (docs/docker.md)', () => {
  const setConf = (host: 'h1' | 'h2', text: string | undefined) =>
    onHost(host, ['sh', '-c', text === undefined ? 'rm -f /etc/criu/runc.conf' : 'printf "%s\\n" "$1" > /etc/criu/runc.conf', 'sh', text ?? '']);
  afterEach(() => {
    for (const host of ['h1', 'h2'] as const) setConf(host, undefined);
  });
  const established = (host: 'h1' | 'h2', name: string) =>
    onHost(host, ['nsenter', '-t', String(seen(host, name).pid), '-n', 'ss', '-Htn', 'state', 'established']).stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).slice(-2).join(' ')).sort();
  const ticks = (host: 'h1' | 'h2', name: string) => (onHost(host, ['cat', `/proc/${seen(host, name).pid}/root/tmp/nc.out`]).stdout.match(/tick \d+/g) ?? []).length;

  test('without tcp-established in runc.conf: refused before the freeze, the connection untouched', async () => {
    const name = runContainer(16, [], { tcpInside: true });
    await counting('h1', name);
    await waitFor('the connection', () => established('h1', name).length === 2, 10_000, 200);
    const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
    expect(run.error?.code).toBe('ERR_PRECHECK_UNSUPPORTED_CONFIG');
    expect(run.error?.hint).toMatch(/tcp-established.*\/etc\/criu\/runc\.conf/);
    expect(run.events.some((e) => e.phase === 'freeze')).toBe(false);
    expect(established('h1', name)).toHaveLength(2);
  });

  test('with it on both hosts: the move keeps the connection, the same sockets carry on on h2', async () => {
    for (const host of ['h1', 'h2'] as const) expect(setConf(host, 'tcp-established').status).toBe(0);
    const name = runContainer(32, [], { tcpInside: true });
    await counting('h1', name);
    await waitFor('the connection', () => established('h1', name).length === 2, 10_000, 200);
    const before = established('h1', name);
    const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
    expect(run.error).toBeUndefined();
    expect(run.report).toMatchObject({ container: name, runtime: 'docker', destination: 'h2' });
    expect(seen('h1', name).exists).toBe(false);
    expect(seen('h2', name)).toMatchObject({ exists: true, status: 'running' });
    // The same connection (same ports at both ends), and ticks keep arriving through it.
    expect(established('h2', name)).toEqual(before);
    const t0 = ticks('h2', name);
    await waitFor('ticks through the moved connection', () => ticks('h2', name) > t0 + 3, 15_000, 200);
  });
});

test('ferry ps lists runc and Docker containers together, with runtime and state; without a daemon it still answers', async () => {
  const docker = runContainer(16);
  d('h1').docker(['pause', docker]);
  const runc = `dk-e2e-runc-${process.pid}`;
  ctl('h1', 'start', runc, '--mem-mib', '8', '--address', '10.77.0.200/24');
  try {
    const ps = await ferryOn('h1', ['ps']);
    expect(ps.status).toBe(0);
    const { containers, problems } = JSON.parse(ps.stdout) as { containers: { ref: { runtime: string; id: string }; state: string; pid?: number }[]; problems: string[] };
    expect(problems).toEqual([]);
    expect(containers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ ref: { runtime: 'docker', id: docker }, state: 'paused', pid: expect.any(Number) }),
        expect.objectContaining({ ref: { runtime: 'runc', id: runc }, state: 'running' }),
      ]),
    );
    // No dockerd behind DOCKER_HOST: runc's containers are listed, Docker is named as the problem, quickly.
    const t0 = Date.now();
    const noDaemon = onHost('h1', ['env', 'DOCKER_HOST=unix:///run/ferry/dk-none.sock', 'ferry', 'ps']);
    expect(noDaemon.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(noDaemon.stdout).toMatch(new RegExp(`runc\\s+${runc}\\s+running`));
    expect(noDaemon.stderr).toMatch(/warning: docker: .*dk-none\.sock/);
  } finally {
    onHost('h1', ['node', join(ROOT, 'e2e', 'bin', 'container-ctl.js'), 'remove', runc]);
  }
});
