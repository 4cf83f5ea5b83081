/**
 * ferry migrate between two real Debian 12 VMs (real kernels, sshd, runc and CRIU, a private network between them),
 * brought up by either lab of e2e-vm/lib/vm-lab.ts: qemu booted directly (`npm run test:vm`) or Vagrant with the
 * project's Vagrantfile (`npm run test:vagrant`). What the namespace hosts of e2e/ cannot show: the guests' kernel
 * has soft-dirty bits, so CRIU's own pre-copy (pre-dumps with memory tracking) runs for real, and the two hosts are
 * separate kernels with separate PID spaces, cgroups and disks.
 *
 * Slow by nature (TCG: ~1.5-2 min per migration). FERRY_VM_STRATEGIES=pre-copy runs a subset.
 */
import { dirname } from 'node:path';
import { waitFor } from '@ferry/core/testing';
import { GUEST_APP, LAB_KIND, ctl, ferryIn, guests, lab, onGuest, type Guest } from './lib/vm-lab';

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

/** Every move goes from SRC to DST (g1 to g2 in the qemu lab, ferry1 to ferry2 in the Vagrant one). */
const [SRC, DST] = guests();
// A cold Vagrant lab builds the image and the box, then boots and provisions both VMs: up to ~20 min under TCG.
const UP_TIMEOUT_MS = 2_400_000;

const leftovers: [Guest, string][] = [];
let seq = 0;

beforeAll(() => {
  const t0 = Date.now();
  // FERRY_VM_REUSE=1: the VMs a run with FERRY_VM_KEEP=1 left up (iterating on a test without minutes of boot).
  const up = process.env.FERRY_VM_REUSE === '1' ? { status: 0, stdout: '', stderr: '' } : lab('up', UP_TIMEOUT_MS);
  process.stderr.write(up.stderr);
  if (up.status !== 0) throw new Error(`the ${LAB_KIND} lab did not come up (${up.status}):\n${up.stderr.slice(-4000)}`);
  process.stderr.write(`${LAB_KIND} lab up in ${Math.round((Date.now() - t0) / 1000)} s\n`);
  // The test containers' rootfs lives outside their bundle (as an image store's would): both hosts hold it.
  const rootfs = onGuest(DST, ['node', '-e', `console.log(require('${GUEST_APP}/packages/core/dist/testing.js').buildTestRootfs())`]);
  if (rootfs.status !== 0) throw new Error(`cannot build the test rootfs on ${DST}: ${rootfs.stderr}`);
}, UP_TIMEOUT_MS + 300_000);
afterEach(() => {
  for (const [guest, name] of leftovers.splice(0)) onGuest(guest, ['node', `${GUEST_APP}/e2e/bin/container-ctl.js`, 'remove', name]);
});
afterAll(() => {
  if (process.env.FERRY_VM_KEEP !== '1') lab('down', 600_000);
}, 700_000);

test('the guests are provisioned by scripts/provision-host.sh and track memory', () => {
  for (const guest of [SRC, DST]) {
    const check = onGuest(guest, ['bash', '/opt/ferry/app/scripts/provision-host.sh', '--check']);
    expect(check.stdout).toMatch(/all checks passed/);
    expect(check.stdout).toMatch(/soft-dirty: yes/);
  }
  const doctor = onGuest(SRC, ['ferry', 'doctor', '--json']);
  expect(doctor.status).toBe(0);
  const facts = JSON.parse(doctor.stdout) as { strategies?: { name: string; available: boolean }[] };
  // CRIU pre-copy is what the namespace hosts cannot offer; the others come along.
  expect(facts.strategies?.filter((s) => s.available).map((s) => s.name)).toEqual(expect.arrayContaining(['stop-and-copy', 'pre-copy', 'post-copy']));
});

/**
 * A workload container on SRC. Its state file is on a host directory bind-mounted at /state; `withStateDir` makes
 * that directory on DST too, as shared storage would (without it, the restore on DST fails: the mount source is missing).
 */
function startContainer(withStateDir: boolean): Started {
  const name = `vm-${process.pid}-${++seq}`;
  leftovers.push([SRC, name], [DST, name]);
  const started = ctl<Started>(SRC, 'start', name, '--mem-mib', String(MEM_MIB), '--dirty-pages-per-sec', String(DIRTY_PAGES_PER_SEC), '--address', `10.77.0.${10 + seq}/24`);
  if (withStateDir) expect(onGuest(DST, ['mkdir', '-p', dirname(started.stateFile)]).status).toBe(0);
  return started;
}

describe.each(STRATEGIES)('%s between the VMs', (strategy) => {
  test('memory and counter survive the move; the source is gone, the destination runs it', async () => {
    const { name } = startContainer(true);
    await waitFor('the workload to count', () => (ctl<State>(SRC, 'state', name).workload?.counter ?? 0) > 2, 120_000, 2000);
    const before = ctl<State>(SRC, 'state', name).workload!.counter;

    // auto must pick CRIU pre-copy here: the source tracks memory.
    const requested = strategy === 'pre-copy' ? 'auto' : strategy;
    const run = await ferryIn(SRC, ['migrate', name, '--to', DST, '--strategy', requested]);
    if (run.status !== 0) process.stderr.write(`ferry migrate failed:\n${run.stdout}\n${run.stderr}\n`);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.report).toMatchObject({ container: name, destination: DST, strategy });
    process.stderr.write(`${strategy}: ${JSON.stringify(run.report)}\n`);

    if (strategy === 'pre-copy') checkPreCopy(run.report!, run.events);

    expect(ctl<State>(SRC, 'state', name).exists).toBe(false);
    expect(ctl<State>(DST, 'state', name)).toMatchObject({ exists: true, state: 'running' });
    await waitFor(`the counter to continue on ${DST}`, () => (ctl<State>(DST, 'state', name).workload?.counter ?? 0) > before + 2, 120_000, 2000);
    expect(ctl(DST, 'verify', name)).toEqual({ verdict: 'ok' });
  });
});

// A real failure of the destination's restore: the agent runs with the e2e fault-bin first on its PATH, whose runc
// fails at `restore` and is the guest's real runc otherwise (the namespace suites do the same: e2e/migrate.test.ts).
test('a restore that fails after the pre-copy rounds leaves the source running and the destination clean', async () => {
  if (!STRATEGIES.includes('pre-copy')) return;
  const { name } = startContainer(false);
  await waitFor('the workload to count', () => (ctl<State>(SRC, 'state', name).workload?.counter ?? 0) > 2, 120_000, 2000);
  const agent = `env FERRY_FAULT=restore-fails PATH=${GUEST_APP}/e2e/fault-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ferry agent`;
  const run = await ferryIn(SRC, ['migrate', name, '--to', DST, '--strategy', 'pre-copy', '--agent-command', agent]);
  expect(run.status).toBe(5);
  expect(run.error?.code).toBe('ERR_RUNTIME_FAILED');
  // The rounds went over before the restore failed: the rollback had pre-dump images to remove on DST.
  expect(run.events.filter((e) => e.event === 'precopy-round').length).toBeGreaterThanOrEqual(2);
  expect(run.events.map((e) => e.event)).toContain('rolled-back');

  const source = ctl<State>(SRC, 'state', name);
  expect(source).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the source to keep counting', () => (ctl<State>(SRC, 'state', name).workload?.counter ?? 0) > source.workload!.counter + 2, 60_000, 2000);
  expect(ctl<State>(DST, 'state', name).exists).toBe(false);
  // No migration directory of this container is left on DST (each records its container's name).
  const left = onGuest(DST, ['grep', '-l', '-s', '-E', `"role":"destination".*"container":"${name}"`, '-r', '/var/lib/ferry/migrations', '--include', 'journal']);
  expect(left.stdout.trim()).toBe('');
  expect(onGuest(DST, ['find', '/var/lib/ferry/migrations', '-path', '*/pre/*']).stdout.trim()).toBe('');
});

/**
 * Crash safety (docs/design/crash-safety.md, "the promise"): before the destination has taken over, the source copy
 * is the container and runs again whatever dies, here kill -9 of the `ferry migrate` process itself: at the freeze of
 * a stop-and-copy, and during CRIU's pre-copy rounds (which only these guests can run: they track memory), after the
 * first round. The scenario and its preconditions are one test; the promise is the next one.
 *
 * The guardian (a process of its own) owns the move once it has started: it either rolls back (the source runs again)
 * or, if the move went on past the point of no return, finishes it. Either way exactly one intact copy runs.
 */
const CRASH_CASES: { strategy: string; at: string; killAt: (e: Record<string, unknown>) => boolean; frozen: boolean }[] = [
  { strategy: 'stop-and-copy', at: 'at the freeze', killAt: (e) => e.event === 'phase-end' && e.phase === 'freeze', frozen: true },
  { strategy: 'pre-copy', at: 'after the first pre-copy round', killAt: (e) => e.event === 'precopy-round', frozen: false },
];
describe.each(CRASH_CASES.filter((c) => c.strategy === 'stop-and-copy' || STRATEGIES.includes(c.strategy)))('kill -9 of ferry migrate ($strategy, $at)', ({ strategy, at, killAt, frozen }) => {
  // How long the source may take to run again: the guardian's rollback under TCG, with room to spare.
  const RECOVERY_MS = 120_000;
  let outcome: { copies: number; memory?: string } | undefined;

  test(`the scenario: ferry is killed by pid ${at}`, async () => {
    const { name } = startContainer(true);
    await waitFor('the workload to count', () => (ctl<State>(SRC, 'state', name).workload?.counter ?? 0) > 2, 120_000, 2000);
    const run = await ferryIn(SRC, ['migrate', name, '--to', DST, '--strategy', strategy], { killAt });
    expect(run.killedAt).toBeDefined();
    expect(killAt(run.killedAt!)).toBe(true);
    expect(run.report).toBeUndefined();
    // At the freeze the source has not moved on since: only a recovery can make it run again. During the rounds it
    // runs on while the guardian decides.
    const seenAtKill = ctl<State>(SRC, 'state', name);
    const counter = seenAtKill.workload?.counter ?? 0;
    let where: string | undefined;
    try {
      await waitFor('one copy to run and count again', () => {
        // Settled: no guardian or watchdog of this move left in the source guest.
        if (onGuest(SRC, ['pgrep', '-f', '[f]erry guardian']).stdout.trim() !== '') return false;
        for (const host of [SRC, DST]) {
          const now = ctl<State>(host, 'state', name);
          if (now.state === 'running' && (now.workload?.counter ?? 0) > counter + 2) where = host;
        }
        return where !== undefined;
      }, RECOVERY_MS * (frozen ? 1 : 2), 3000);
    } catch {
      // The outcome is judged by the next test.
    }
    const copies = [SRC, DST].filter((host) => ctl<State>(host, 'state', name).state === 'running').length;
    const memory = where === undefined ? undefined : ctl<{ verdict: string }>(where, 'verify', name).verdict;
    outcome = { copies, memory };
    process.stderr.write(`kill -9 (${strategy}, ${at}): ${JSON.stringify({ atKill: seenAtKill.state, where, ...outcome })}\n`);
  });

  test('exactly one copy runs again, with its memory intact', () => {
    expect(outcome).toEqual({ copies: 1, memory: 'ok' });
  });
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
