/**
 * --dry-run, --bandwidth and --max-downtime between the sandbox hosts (#17 part 3). A dry run measures the link and
 * the container and predicts; it freezes nothing and leaves nothing on the destination. The real move after it
 * reports how far off the prediction was. Timing enters the assertions only as bounds with margin.
 */
import { jsonEventProblems } from '../packages/cli/src/testing/json-events';
import { waitFor } from '@ferry/core/testing';
import { HOSTS_FILE, ferryOn, jsonLines, onHost, sandbox } from './lib/sandbox';
import { connectClient, expectMovedWithConnection, expectRolledBack, removeTestContainers, startContainer, state } from './lib/containers';

jest.setTimeout(600_000);

beforeAll(() => {
  sandbox('up');
});
afterEach(() => removeTestContainers());
afterAll(() => {
  sandbox('down');
});

const MiB = 1 << 20;
/** Every migration directory on a host (images, journals): a dry run must add none, on either host. */
const migrationDirs = (host: 'h1' | 'h2') => onHost(host, ['ls', '-1A', '/var/lib/ferry/migrations']).stdout.split('\n').filter(Boolean).sort();

interface DryRun {
  plan: { strategy: string; reason: string };
  measurements: { linkBytesPerSec: number; memoryBytes: number; dirtyBytesPerSec: number; filesBytes: number };
  prediction: { strategy: string; bytes: number; freezeMs: number; totalMs: number; basis: string[] };
  refusal?: string;
}

test('a dry run measures and predicts without freezing or copying; the real move after it reports the prediction error', async () => {
  const c = startContainer(64);
  const before = { h1: migrationDirs('h1'), h2: migrationDirs('h2') };
  const counter0 = state('h1', c.name).workload!.counter;

  const dry = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--dry-run', '--hosts-file', HOSTS_FILE]);
  expect(dry.error).toBeUndefined();
  expect(dry.status).toBe(0);
  const lines = [...dry.events, ...jsonLines(dry.stdout)];
  expect(jsonEventProblems(lines)).toEqual([]);
  const result = lines.find((l) => l.event === 'dry-run')?.dryRun as DryRun;
  expect(result.plan.strategy).toBe('hash-pre-copy');
  // 64 MiB of filled memory: the first pass finds it; the workload dirties pages, so the second pass finds some.
  expect(result.measurements.memoryBytes).toBeGreaterThan(60 * MiB);
  expect(result.measurements.dirtyBytesPerSec).toBeGreaterThan(0);
  expect(result.measurements.linkBytesPerSec).toBeGreaterThan(0);
  expect(result.prediction.bytes).toBeGreaterThan(result.measurements.memoryBytes);
  expect(result.prediction.freezeMs).toBeGreaterThan(0);
  expect(result.prediction.totalMs).toBeGreaterThan(result.prediction.freezeMs);
  expect(result.prediction.basis.join(' ')).toMatch(/link .* MiB\/s/);

  // Nothing frozen, nothing copied: no freeze phase, the counter goes on, no migration directory anywhere.
  expect(dry.events.filter((e) => e.event === 'phase-start').map((e) => e.phase)).not.toContain('freeze');
  expect(state('h1', c.name)).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the counter to keep moving', () => (state('h1', c.name).workload?.counter ?? 0) > counter0 + 5, 10_000, 100);
  expect(state('h2', c.name).exists).toBe(false);
  expect({ h1: migrationDirs('h1'), h2: migrationDirs('h2') }).toEqual(before);

  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(jsonEventProblems(jsonLines(run.stdout))).toEqual([]);
  const prediction = run.report!.prediction as { source: string; strategy: string; predicted: Record<string, number>; actual: Record<string, number>; errorPct: Record<string, number> };
  expect(prediction).toMatchObject({ source: 'dry-run', strategy: 'hash-pre-copy' });
  expect(prediction.actual).toEqual({ bytes: run.report!.bytesSent, freezeMs: run.report!.downtimeMs, totalMs: run.report!.totalMs });
  for (const v of Object.values(prediction.errorPct)) expect(Number.isFinite(v)).toBe(true);
  console.log(`dry-run prediction vs move: ${JSON.stringify(prediction)}`);
  expect(state('h2', c.name)).toMatchObject({ exists: true, state: 'running' });
});

test('--max-downtime an eager restore could not meet: auto restores lazily by itself, fits it without a fall-back, saying why, and the container moves intact', async () => {
  // 256 MiB: an eager restore alone is predicted at about 850 ms (300 MiB/s), over the budget with CRIU's part.
  const c = startContainer(256, false, 200);
  const client = connectClient(c);
  await client.waitFor(/tick \d+/);
  const args = ['migrate', c.name, '--to', 'h2', '--max-downtime', '1000ms', '--hosts-file', HOSTS_FILE];
  const dry = await ferryOn('h1', [...args, '--dry-run']);
  expect(dry.error).toBeUndefined();
  const result = jsonLines(dry.stdout).find((l) => l.event === 'dry-run')?.dryRun as DryRun & { plan: { lazyRestore?: boolean; reason: string }; fallback?: unknown };
  expect(result.plan).toMatchObject({ strategy: 'hash-pre-copy', lazyRestore: true });
  expect(result.plan.reason).toMatch(/restored lazily: the destination holds every page/);
  expect(result.fallback).toBeUndefined();
  expect(result.prediction.basis.join('\n')).toMatch(/restored lazily, memory fills in after it/);
  expect(result.prediction.freezeMs).toBeLessThanOrEqual(1000);

  const before = state('h1', c.name).workload!.counter;
  const run = await ferryOn('h1', args);
  if (run.error) process.stderr.write(`move with --max-downtime failed: ${JSON.stringify(run.error)}\n${run.stderr}\n`);
  expect(run.error).toBeUndefined();
  expect(run.report).toMatchObject({ strategy: 'hash-pre-copy', lazyRestore: true });
  expect(run.report!.strategyReason).toMatch(/restored lazily: the destination holds every page/);
  expect(run.events.filter((e) => e.event === 'phase-start').map((e) => e.phase)).toContain('transfer-pages');
  await expectMovedWithConnection(c.name, client, before);
});

test('--bandwidth caps the rate of a real transfer', async () => {
  const c = startContainer(32, false, 200);
  const cap = 8 * MiB;
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--strategy', 'stop-and-copy', '--bandwidth', '8M', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  // Each transfer big enough to measure (the 32 MiB of images at least): its bytes over its time, under the cap
  // with a margin for the burst the limiter allows and for framing.
  const transfers = run.events.filter((e) => e.event === 'phase-end' && typeof e.bytes === 'number' && (e.bytes as number) >= 4 * MiB) as { phase: string; bytes: number; ms: number }[];
  expect(transfers.map((t) => t.phase)).toContain('transfer-images');
  for (const t of transfers) {
    const rate = (t.bytes * 1000) / t.ms;
    console.log(`--bandwidth 8M: ${t.phase} ${(t.bytes / MiB).toFixed(1)} MiB in ${t.ms} ms = ${(rate / MiB).toFixed(2)} MiB/s`);
    expect(rate).toBeLessThan(cap * 1.1);
  }
  expect(state('h2', c.name)).toMatchObject({ exists: true, state: 'running' });
});

test('--max-downtime that no strategy can meet is refused, saying why, before anything is frozen', async () => {
  const c = startContainer(16);
  const dry = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--dry-run', '--max-downtime', '1ms', '--hosts-file', HOSTS_FILE]);
  expect(dry.status).toBe(3);
  expect(dry.error?.code).toBe('ERR_PRECHECK_DOWNTIME');
  expect((jsonLines(dry.stdout).find((l) => l.event === 'dry-run')?.dryRun as DryRun).refusal).toMatch(/over --max-downtime 1 ms/);

  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--max-downtime', '1ms', '--hosts-file', HOSTS_FILE]);
  expect(run.status).toBe(3);
  expect(run.error?.code).toBe('ERR_PRECHECK_DOWNTIME');
  expect(run.error?.message).toMatch(/would freeze the container about \d+ ms, over --max-downtime 1 ms/);
  expect(run.events.filter((e) => e.event === 'phase-start').map((e) => e.phase)).not.toContain('freeze');
  await expectRolledBack(c.name);
});
