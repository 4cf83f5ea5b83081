/**
 * ferry migrate between two real Debian 12 VMs (scripts/vm/lab.sh: qemu under TCG, a private link between them,
 * real kernels, sshd, runc and CRIU). What the namespace hosts of e2e/ cannot show: the guests' kernel has
 * soft-dirty bits, so CRIU's own pre-copy (pre-dumps with memory tracking) runs for real, and the two hosts are
 * separate kernels with separate PID spaces, cgroups and disks.
 *
 * Slow by nature (TCG: ~1.5-2 min per migration); `npm run test:vm`. FERRY_VM_STRATEGIES=pre-copy runs a subset.
 */
import { dirname } from 'node:path';
import { waitFor } from '@ferry/core/testing';
import { GUEST_APP, ctl, ferryIn, lab, onGuest, type Guest } from './lib/vm-lab';

jest.setTimeout(900_000);

interface Started {
  name: string;
  stateFile: string;
}
interface State {
  exists: boolean;
  state?: string;
  workload?: { counter: number };
}
interface PrecopyReport {
  outcome: string;
  reason: string;
  rounds: { round: number; pages: number; bytes: number; scannedPages: number; ms: number; cpuMs: number }[];
  finalPages: number;
  finalPagesHeld: number;
  finalRound?: { pages: number; bytes: number };
}

const MEM_MIB = 64;
// The workload rewrites this many random pages per second: enough that every round has something to copy, few enough
// that rounds shrink under TCG, where the first round of 64 MiB takes ~20 s.
const DIRTY_PAGES_PER_SEC = 20;
const ALL = ['pre-copy', 'stop-and-copy', 'post-copy'];
const STRATEGIES = (process.env.FERRY_VM_STRATEGIES ?? ALL.join(',')).split(',').filter((s) => ALL.includes(s));

const leftovers: [Guest, string][] = [];
let seq = 0;

beforeAll(() => {
  const up = lab('up', 900_000);
  if (up.status !== 0) throw new Error(`lab.sh up failed (${up.status}):\n${up.stderr}`);
  process.stderr.write(up.stderr);
  // The test containers' rootfs lives outside their bundle (as an image store's would): both hosts hold it.
  const rootfs = onGuest('g2', ['node', '-e', `console.log(require('${GUEST_APP}/packages/core/dist/testing.js').buildTestRootfs())`]);
  if (rootfs.status !== 0) throw new Error(`cannot build the test rootfs on g2: ${rootfs.stderr}`);
});
afterEach(() => {
  for (const [guest, name] of leftovers.splice(0)) onGuest(guest, ['node', '/opt/ferry/app/e2e/bin/container-ctl.js', 'remove', name]);
});
afterAll(() => {
  if (process.env.FERRY_VM_KEEP !== '1') lab('down', 60_000);
});

test('the guests are provisioned by scripts/provision-host.sh and track memory', () => {
  for (const guest of ['g1', 'g2'] as const) {
    const check = onGuest(guest, ['bash', '/opt/ferry/app/scripts/provision-host.sh', '--check']);
    expect(check.stdout).toMatch(/all checks passed/);
    expect(check.stdout).toMatch(/soft-dirty: yes/);
  }
  const doctor = onGuest('g1', ['ferry', 'doctor', '--json']);
  expect(doctor.status).toBe(0);
  const facts = JSON.parse(doctor.stdout) as { strategies?: { name: string; available: boolean }[] };
  // CRIU pre-copy is what the namespace hosts cannot offer; the others come along.
  expect(facts.strategies?.filter((s) => s.available).map((s) => s.name)).toEqual(expect.arrayContaining(['stop-and-copy', 'pre-copy', 'post-copy']));
});

/**
 * A workload container on g1. Its state file is on a host directory bind-mounted at /state; `withStateDir` makes
 * that directory on g2 too, as shared storage would (without it, the restore on g2 fails: the mount source is missing).
 */
function startContainer(withStateDir: boolean): Started {
  const name = `vm-${process.pid}-${++seq}`;
  leftovers.push(['g1', name], ['g2', name]);
  const started = ctl<Started>('g1', 'start', name, '--mem-mib', String(MEM_MIB), '--dirty-pages-per-sec', String(DIRTY_PAGES_PER_SEC), '--address', `10.77.0.${10 + seq}/24`);
  if (withStateDir) expect(onGuest('g2', ['mkdir', '-p', dirname(started.stateFile)]).status).toBe(0);
  return started;
}

describe.each(STRATEGIES)('%s between the VMs', (strategy) => {
  test('memory and counter survive the move; the source is gone, the destination runs it', async () => {
    const { name } = startContainer(true);
    await waitFor('the workload to count', () => (ctl<State>('g1', 'state', name).workload?.counter ?? 0) > 2, 120_000, 2000);
    const before = ctl<State>('g1', 'state', name).workload!.counter;

    // auto must pick CRIU pre-copy here: the source tracks memory.
    const requested = strategy === 'pre-copy' ? 'auto' : strategy;
    const run = await ferryIn('g1', ['migrate', name, '--to', 'g2', '--strategy', requested]);
    if (run.status !== 0) process.stderr.write(`ferry migrate failed:\n${run.stdout}\n${run.stderr}\n`);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.report).toMatchObject({ container: name, destination: 'g2', strategy });
    process.stderr.write(`${strategy}: ${JSON.stringify(run.report)}\n`);

    if (strategy === 'pre-copy') checkPreCopy(run.report!, run.events);

    expect(ctl<State>('g1', 'state', name).exists).toBe(false);
    expect(ctl<State>('g2', 'state', name)).toMatchObject({ exists: true, state: 'running' });
    await waitFor('the counter to continue on g2', () => (ctl<State>('g2', 'state', name).workload?.counter ?? 0) > before + 2, 120_000, 2000);
    expect(ctl('g2', 'verify', name)).toEqual({ verdict: 'ok' });
  });
});

test('a restore that fails after the pre-copy rounds leaves the source running and the destination clean', async () => {
  if (!STRATEGIES.includes('pre-copy')) return;
  const { name } = startContainer(false);
  await waitFor('the workload to count', () => (ctl<State>('g1', 'state', name).workload?.counter ?? 0) > 2, 120_000, 2000);
  const run = await ferryIn('g1', ['migrate', name, '--to', 'g2', '--strategy', 'pre-copy']);
  expect(run.status).toBe(5);
  expect(run.error?.code).toBe('ERR_RUNTIME_FAILED');
  // The rounds went over before the restore failed: the rollback had pre-dump images to remove on g2.
  expect(run.events.filter((e) => e.event === 'precopy-round').length).toBeGreaterThanOrEqual(2);
  expect(run.events.map((e) => e.event)).toContain('rolled-back');

  const source = ctl<State>('g1', 'state', name);
  expect(source).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the source to keep counting', () => (ctl<State>('g1', 'state', name).workload?.counter ?? 0) > source.workload!.counter + 2, 60_000, 2000);
  expect(ctl<State>('g2', 'state', name).exists).toBe(false);
  // No migration directory of this container is left on g2 (each records its container's name).
  const left = onGuest('g2', ['grep', '-l', '-s', '-E', `"role":"destination".*"container":"${name}"`, '-r', '/var/lib/ferry/migrations', '--include', 'journal']);
  expect(left.stdout.trim()).toBe('');
  expect(onGuest('g2', ['find', '/var/lib/ferry/migrations', '-path', '*/pre/*']).stdout.trim()).toBe('');
});

/** Rounds shrink, the policy stopped them, and the final dump holds only what changed since the last round. */
function checkPreCopy(report: Record<string, unknown>, events: Record<string, unknown>[]): void {
  const pre = report.precopy as PrecopyReport;
  expect(pre.rounds.length).toBeGreaterThanOrEqual(2);
  expect(report.rounds).toBe(pre.rounds.length);
  // The first round holds the whole 64 MiB; every later round only what the workload dirtied meanwhile.
  const full = pre.rounds[0]!;
  expect(full.pages).toBeGreaterThan((MEM_MIB * 256) / 2);
  for (let i = 1; i < pre.rounds.length; i++) expect(pre.rounds[i]!.pages).toBeLessThan(pre.rounds[i - 1]!.pages);
  expect(pre.outcome).toBe('converged');
  // The final dump wrote a tenth of a full dump at most; the destination held the rest from the rounds.
  expect(pre.finalRound!.pages).toBeLessThan(full.pages / 10);
  expect(pre.finalRound!.bytes).toBeLessThan(full.bytes / 10);
  expect(pre.finalPagesHeld).toBeGreaterThan(full.pages / 2);
  expect(report.bytesSentFrozen as number).toBeLessThan(full.bytes / 10);
  // Each round was announced as it happened, with the policy's decision.
  const announced = events.filter((e) => e.event === 'precopy-round');
  expect(announced.map((e) => e.round)).toEqual(pre.rounds.map((r) => r.round));
  expect(announced.at(-1)).toMatchObject({ next: 'freeze' });
}
