/**
 * Hash-based pre-copy between the sandbox hosts (whose kernel has no soft-dirty tracking): rounds of changed pages
 * while the container runs, then a frozen step that sends only what the destination lacks. Checked by the workload
 * itself (every page against its generation, pages flipping back and forth between rounds included), its counter,
 * and the report's round figures.
 */
import { waitFor } from '@ferry/core/testing';
import { HOSTS_FILE, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';
import { expectRolledBack, migrationsOf, removeTestContainers, startContainer, state } from './lib/containers';

jest.setTimeout(300_000);

beforeAll(() => {
  sandbox('up');
});
afterEach(() => removeTestContainers());
afterAll(() => {
  sandbox('down');
});

const MiB = 1024 * 1024;

interface PrecopyReport {
  outcome: string;
  reason: string;
  rounds: { round: number; pages: number; bytes: number; scannedPages: number; cpuMs: number }[];
  finalPages: number;
  finalPagesHeld: number;
}

async function migrateAndCheck(memMib: number, dirtyPagesPerSec: number): Promise<PrecopyReport> {
  const c = startContainer(memMib, false, dirtyPagesPerSec);
  const before = state('h1', c.name).workload!.counter;
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'hash-pre-copy', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(run.report).toMatchObject({ strategy: 'hash-pre-copy' });
  const precopy = run.report!.precopy as PrecopyReport;
  const rounds = run.events.filter((e) => e.event === 'precopy-round');
  expect(rounds.length).toBe(precopy.rounds.length);
  expect(precopy.rounds.length).toBeGreaterThanOrEqual(2);
  // Round 1 copies the whole memory; later rounds only what changed.
  expect(precopy.rounds[0]!.bytes).toBeGreaterThan(memMib * MiB);
  expect(precopy.rounds[1]!.pages).toBeLessThan(precopy.rounds[0]!.pages / 2);
  // The frozen step: most of the final dump was already on h2.
  expect(precopy.finalPagesHeld).toBeGreaterThan(precopy.finalPages * 0.75);
  expect(run.report!.bytesSentFrozen).toBeLessThan((memMib * MiB) / 4);

  expect(state('h1', c.name).exists).toBe(false);
  expect(state('h2', c.name)).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the counter to continue on h2', () => (state('h2', c.name).workload?.counter ?? 0) > before + 5, 20_000, 100);
  expect(ctl('h2', 'verify', c.name)).toEqual({ verdict: 'ok' });
  expect(migrationsOf('h2', c.name)).toHaveLength(1);
  expect(onHost('h2', ['sh', '-c', 'ls -d /var/lib/ferry/migrations/*/levels 2>/dev/null']).stdout).toBe('');
  return precopy;
}

test('256 MiB dirtying 2% of its pages per second', async () => {
  await migrateAndCheck(256, 1311);
});

test('1 GiB dirtying 2% of its pages per second', async () => {
  await migrateAndCheck(1024, 5243);
});

test('a workload that dirties memory faster than the link moves it gives up pre-copy by the policy, and still moves', async () => {
  // 16 MiB rewritten at ~78 MiB/s over a 50 Mbit/s link: every round would find everything changed again.
  const c = startContainer(16, false, 20_000);
  sandbox('shape', '50mbit');
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'hash-pre-copy', '--hosts-file', HOSTS_FILE]).finally(() =>
    sandbox('shape', 'off'),
  );
  expect(run.error).toBeUndefined();
  const precopy = run.report!.precopy as PrecopyReport;
  expect(precopy.outcome).toBe('dirty-rate-exceeds-link');
  expect(precopy.reason).toMatch(/memory is dirtied at .* MiB\/s, .* the transfer moves it/);
  expect(precopy.rounds.length).toBe(2);
  expect(ctl('h2', 'verify', c.name)).toEqual({ verdict: 'ok' });
});

test('the SSH connection is cut during the rounds: the source runs on, the destination is clean', async () => {
  const c = startContainer(256, false, 1311);
  let cut = false;
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'hash-pre-copy', '--hosts-file', HOSTS_FILE], (e) => {
    if (e.event === 'phase-start' && e.phase === 'precopy' && !cut) {
      cut = true;
      onHost('h2', ['pkill', '-KILL', '-f', 'sshd: root@notty']);
    }
  });
  expect(cut).toBe(true);
  expect(run.error?.code).toMatch(/^ERR_TRANSPORT_/);
  expect(run.status).toBe(6);
  await expectRolledBack(c.name);
  expect(ctl('h1', 'verify', c.name)).toEqual({ verdict: 'ok' });
});
