/**
 * ferry migrate of Podman containers between the two sandbox hosts, each with its own Podman storage, run root and
 * configuration (scripts/sandbox-hosts.sh: tmpfs on /var/lib/containers, /run/containers, /run/libpod; runc, cgroupfs,
 * vfs), with real CRIU, runc, conmon and SSH. The image exists on h1 only: the migration carries it to h2. Afterwards
 * h2's Podman knows the container (`podman ps`, `podman stop`), the workload's memory verifies and its counter goes
 * on. An established TCP connection (both ends inside the container: --network none) moves with it.
 */
import { spawnSync } from 'node:child_process';
import { buildTestRootfs, waitFor } from '@ferry/core/testing';
import { FAULT_BIN, HOSTS_FILE, ROOT, SANDBOX_DIR, SANDBOX_NAME, ferryOn, onHost, sandbox } from './lib/sandbox';

jest.setTimeout(300_000);

const IMAGE = 'localhost/ferry-pd-e2e:1';
const SCRIPT = `${ROOT}/scripts/sandbox-hosts.sh`;
let seq = 0;

function podman(host: 'h1' | 'h2', args: string[]): { status: number | null; stdout: string; stderr: string } {
  return onHost(host, ['podman', ...args]);
}

beforeAll(() => {
  sandbox('up');
  const tar = spawnSync('tar', ['-C', buildTestRootfs(), '-c', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar of the test rootfs failed: ${tar.stderr}`);
  const env = { ...process.env, FERRY_SANDBOX_DIR: SANDBOX_DIR, FERRY_SANDBOX_NAME: SANDBOX_NAME };
  const imp = spawnSync('bash', [SCRIPT, 'exec', 'h1', '--', 'podman', 'import', '-q', '-', IMAGE], { env, input: tar.stdout, encoding: 'utf8' });
  if (imp.status !== 0) throw new Error(`podman import on h1 failed: ${imp.stderr}`);
});
afterAll(() => sandbox('down'));
afterEach(() => {
  for (const host of ['h1', 'h2'] as const) {
    onHost(host, ['sh', '-c', 'rm -rf /var/lib/ferry/migrations/*']);
    podman(host, ['rm', '--all', '--force', '--time', '0']);
  }
});

function runContainer(memMib: number, options: { tcpInside?: boolean } = {}): string {
  const name = `pd-e2e-${process.pid}-${++seq}`;
  const workload = ['/usr/bin/workload', '--state', '/tmp/state', '--mem-mib', String(memMib), '--dirty-pages-per-sec', '2000'];
  const command = options.tcpInside
    ? ['/bin/sh', '-c', `${workload.join(' ')} --port 8080 & sleep 1; sleep 1000000 | /bin/nc 127.0.0.1 8080 > /tmp/nc.out`]
    : workload;
  const r = podman('h1', ['run', '-d', '--name', name, '--network', 'none', IMAGE, ...command]);
  if (r.status !== 0) throw new Error(`podman run failed: ${r.stderr}`);
  return name;
}

interface Seen {
  exists: boolean;
  status?: string;
  pid?: number;
  counter?: number;
}

function seen(host: 'h1' | 'h2', name: string): Seen {
  const r = podman(host, ['inspect', '-f', '{{.State.Status}} {{.State.Pid}}', name]);
  if (r.status !== 0) return { exists: false };
  const [status, pidText] = r.stdout.trim().split(' ');
  const pid = Number(pidText);
  const state = pid > 0 ? onHost(host, ['cat', `/proc/${pid}/root/tmp/state`]).stdout : '';
  const counter = /counter=(\d+)/.exec(state)?.[1];
  return { exists: true, status, pid, ...(counter ? { counter: Number(counter) } : {}) };
}

async function counting(host: 'h1' | 'h2', name: string): Promise<number> {
  return waitFor(`${name} counting on ${host}`, () => {
    const c = seen(host, name).counter ?? 0;
    return c >= 2 ? c : undefined;
  }, 30_000, 200);
}

function verify(host: 'h1' | 'h2', name: string): string {
  const { pid } = seen(host, name);
  const r = onHost(host, ['sh', '-c', 'rm -f "$1"; kill -USR1 "$2"; for i in $(seq 300); do [ -s "$1" ] && exec cat "$1"; sleep 0.1; done; echo timeout', 'sh', `/proc/${pid}/root/tmp/state.verify`, String(pid)]);
  return /verify=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout;
}

const migrationDirs = (host: 'h1' | 'h2') => onHost(host, ['sh', '-c', 'ls /var/lib/ferry/migrations 2>/dev/null || true']).stdout.split('\n').filter(Boolean);

test('ferry ps lists Podman containers; each host has its own Podman', async () => {
  const name = runContainer(8);
  const ps = await ferryOn('h1', ['ps']);
  expect(ps.status).toBe(0);
  const { containers } = JSON.parse(ps.stdout) as { containers: { ref: { runtime: string; id: string }; state: string }[] };
  expect(containers).toEqual(expect.arrayContaining([expect.objectContaining({ ref: { runtime: 'podman', id: name }, state: 'running' })]));
  expect(seen('h2', name).exists).toBe(false);
  expect(podman('h2', ['image', 'exists', IMAGE]).status).not.toBe(0);
});

test('stop-and-copy: image carried, memory verified, counter goes on, h2 Podman owns it, gone from h1', async () => {
  const name = runContainer(64);
  const before = await counting('h1', name);
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.report).toMatchObject({ container: name, runtime: 'podman', destination: 'h2', strategy: 'stop-and-copy' });
  expect(run.report!.bytesSent).toBeGreaterThan(64 * 1024 * 1024);
  expect(seen('h1', name).exists).toBe(false);
  expect(seen('h2', name)).toMatchObject({ exists: true, status: 'running' });
  expect(podman('h2', ['ps', '--format', '{{.Names}}']).stdout.split('\n')).toContain(name);
  await waitFor('the counter to go on on h2', () => (seen('h2', name).counter ?? 0) > before + 3, 30_000, 200);
  expect(verify('h2', name)).toBe('ok');
  expect(podman('h2', ['stop', '--time', '1', name]).status).toBe(0);
  expect(seen('h2', name).status).toBe('exited');
});

test('ferry checkpoint --export of a Podman container writes the archive Podman itself imports', async () => {
  const name = runContainer(32);
  const before = await counting('h1', name);
  const file = `/tmp/ferry-pd-export-${process.pid}-${seq}.tar`;
  try {
    const run = await ferryOn('h1', ['checkpoint', name, '--export', file]);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    const members = spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout.split('\n');
    expect(members).toEqual(expect.arrayContaining(['config.dump', 'spec.dump', 'network.status', 'rootfs-diff.tar', 'checkpoint/inventory.img']));
    // The checkpointed container is Podman's old record; the import makes the container anew under the same name.
    expect(podman('h1', ['rm', '--force', '--time', '0', name]).status).toBe(0);
    const restored = podman('h1', ['container', 'restore', '--import', file]);
    expect(restored.stderr).not.toMatch(/Error/);
    expect(restored.status).toBe(0);
    expect(seen('h1', name)).toMatchObject({ exists: true, status: 'running' });
    await waitFor('the counter to go on after the import', () => (seen('h1', name).counter ?? 0) > before + 3, 30_000, 200);
    expect(verify('h1', name)).toBe('ok');
  } finally {
    spawnSync('rm', ['-f', file]);
  }
});

// Podman makes the restore's network namespace anew with lo down; ferry's archive carries a prestart hook that brings
// it up before CRIU re-creates the connection (podman-restore.ts, docs/podman.md).
test('established TCP connection inside the container survives the move', async () => {
  const name = runContainer(16, { tcpInside: true });
  await counting('h1', name);
  const established = (host: 'h1' | 'h2') =>
    onHost(host, ['nsenter', '-t', String(seen(host, name).pid), '-n', 'ss', '-Htn', 'state', 'established']).stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).slice(-2).join(' ')).sort();
  const ticks = (host: 'h1' | 'h2') => (onHost(host, ['cat', `/proc/${seen(host, name).pid}/root/tmp/nc.out`]).stdout.match(/tick \d+/g) ?? []).length;
  await waitFor('the connection', () => established('h1').length === 2, 20_000, 200);
  const before = established('h1');
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(established('h2')).toEqual(before);
  const t0 = ticks('h2');
  await waitFor('ticks through the moved connection', () => ticks('h2') > t0 + 3, 30_000, 200);
});

test('post-copy is refused with a code and hint; a failed restore leaves the source running and h2 clean', async () => {
  const name = runContainer(16);
  await counting('h1', name);
  const post = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE, '--strategy', 'post-copy']);
  expect(post.error?.code).toBe('ERR_PRECHECK_FEATURE_MISSING');
  expect(post.error?.hint).toMatch(/--strategy/);
  expect(post.events.some((e) => e.phase === 'freeze')).toBe(false);
  // Podman's import on h2 fails after the freeze (fault-bin/podman): ferry rolls back.
  const agent = ['--agent-command', `env FERRY_FAULT=restore-fails PATH=${FAULT_BIN}:${SANDBOX_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ferry agent`];
  const run = await ferryOn('h1', ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE, '--strategy', 'stop-and-copy', ...agent]);
  // The injected fault fails podman before CRIU runs: ERR_RUNTIME_FAILED (tool-failure.ts), not a CRIU code.
  expect(run.error?.code).toBe('ERR_RUNTIME_FAILED');
  expect(run.error?.message).toMatch(/injected fault/);
  expect(run.error?.hint).toBeTruthy();
  expect(run.events.some((e) => e.phase === 'freeze')).toBe(true);
  const source = seen('h1', name);
  expect(source).toMatchObject({ exists: true, status: 'running' });
  await waitFor('the source to keep counting', () => (seen('h1', name).counter ?? 0) > (source.counter ?? 0) + 3, 20_000, 200);
  expect(verify('h1', name)).toBe('ok');
  await waitFor('a clean destination', () => !seen('h2', name).exists && migrationDirs('h2').length === 0, 20_000, 200);
});
