import type { MigrationReport } from '@ferry/migrate';
import { renderReport } from './render-report';

const base: MigrationReport = {
  migrationId: 'm',
  container: 'web',
  runtime: 'runc',
  destination: 'h2',
  destinationName: 'web',
  strategy: 'hash-pre-copy',
  strategyReason: 'requested with --strategy',
  downtimeMs: 1235,
  totalMs: 4470,
  bytesSent: 278_200_000,
  bytesSentFrozen: 2_800_000,
  phasesMs: { precopy: 2489, restore: 435 },
  rounds: 2,
  warnings: [],
};

test('a pre-copy report says how many rounds, why they ended and how much the destination already held', () => {
  const text = renderReport({
    ...base,
    precopy: { outcome: 'converged', reason: 'round 2 changed 1598 pages (6.3 MiB), about 55 ms to send frozen', rounds: [], finalPages: 65608, finalPagesHeld: 64923 },
  });
  expect(text).toContain('migrated runc:web to h2 (hash-pre-copy)');
  expect(text).toContain('pre-copy      0 round(s), then froze: round 2 changed 1598 pages (6.3 MiB), about 55 ms to send frozen (converged)');
  expect(text).toContain('already held 99.0% of the final 65608 pages');
});

test('other strategies have no pre-copy lines', () => {
  expect(renderReport({ ...base, strategy: 'stop-and-copy' })).not.toContain('pre-copy ');
});

test('a clone says cloned, under which name, and describes the source freeze rather than a downtime (#14)', () => {
  const text = renderReport({ ...base, strategy: 'stop-and-copy', destinationName: 'web-clone' }, { clone: true });
  expect(text).toMatch(/^cloned runc:web to h2 as web-clone\n/);
  expect(text).toContain('source frozen 1235 ms (while it was dumped; it ran on afterwards)');
  expect(text).not.toContain('downtime');
});

test("the restore line says where the destination's restore time went; an older agent's report has none", () => {
  const text = renderReport({ ...base, restoreSteps: { agentMs: 12, prepareMs: 230, toolMs: 480, finishMs: 40, criu: { restoreMs: 301, forkingMs: 5 } } });
  expect(text).toContain('  restore       agent 12 ms, prepare 230 ms, tool 480 ms (CRIU 301 ms, forking 5 ms), finish 40 ms');
  expect(renderReport(base)).not.toContain('  restore ');
});

test('a move restored lazily says so on its first line', () => {
  expect(renderReport({ ...base, lazyRestore: true })).toContain('migrated runc:web to h2 (hash-pre-copy, restored lazily)');
});
