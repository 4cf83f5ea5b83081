/**
 * Hash-pre-copy with a lazy restore (`--lazy-restore`, issue #15): the destination restores without writing the
 * memory while frozen and fills the running copy from the pages its pre-copy rounds brought. Checked by the
 * workload (every page against its generation), its TCP client (the connection survives), the report (CRIU's
 * frozen restore wrote almost no page; the fill phase ran), and by killing processes on the destination while the
 * copy fills: the agent's death stops nothing (the relay runs detached and finishes the fill); the relay's or the
 * daemon's death removes the copy before it can run on missing pages, and the source, held until then, takes the
 * container back.
 */
import { waitFor } from '@ferry/core/testing';
import { HOSTS_FILE, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';
import { connectClient, expectMovedWithConnection, expectRolledBack, migrationsOf, removeTestContainers, startContainer, state } from './lib/containers';

jest.setTimeout(300_000);

beforeAll(() => {
  sandbox('up');
});
afterEach(() => removeTestContainers());
afterAll(() => sandbox('down'));

const migrate = (name: string, ...extra: string[]) => ['migrate', name, '--to', 'h2', '--hosts-file', HOSTS_FILE, '--strategy', 'hash-pre-copy', '--lazy-restore', ...extra];
/**
 * The kills below need a fill that lasts: ferry's own lazy-pages handler fills 1 GiB in under a second, before a
 * kill sent at the fill phase's start lands, so these moves keep CRIU's daemon (FERRY_LAZY_PAGES=criu, a minute of
 * fill under this workload's faults). The relay's crash handling is the same for both handlers (the agent holds the
 * userfaultfds); ferry's handler's own behaviour is in pages/local-restore.int.test.ts.
 */
const SLOW_FILL = ['--agent-command', 'env FERRY_LAZY_PAGES=criu ferry agent'];

test.each([256, 1024])('%i MiB dirtying 2%% of its pages per second: moved with its TCP connection, memory intact, the frozen restore wrote almost no page', async (memMib) => {
  const c = startContainer(memMib, false, Math.round(memMib * 256 * 0.02));
  const client = connectClient(c);
  await client.waitFor(/tick \d+/);
  const before = state('h1', c.name).workload!.counter;
  const run = await ferryOn('h1', migrate(c.name));
  if (run.error) process.stderr.write(`lazy restore of ${memMib} MiB failed: ${JSON.stringify(run.error)}\n${run.stderr}\n`);
  expect(run.error).toBeUndefined();
  expect(run.report).toMatchObject({ strategy: 'hash-pre-copy' });
  expect(run.report!.strategyReason).toMatch(/restored lazily/);
  const phases = run.events.filter((e) => e.event === 'phase-start').map((e) => e.phase);
  expect(phases).toContain('transfer-pages');
  expect(phases).not.toContain('mark-held');
  const steps = run.report!.restoreSteps as { criu?: { pagesRestored?: number } } | undefined;
  // Eagerly, CRIU writes every page of the container here; lazily only the few it cannot leave for later.
  if (steps?.criu?.pagesRestored !== undefined) expect(steps.criu.pagesRestored).toBeLessThan(memMib * 256 * 0.05);
  await expectMovedWithConnection(c.name, client, before);
  expect(onHost('h2', ['sh', '-c', 'ls -d /var/lib/ferry/migrations/*/relay /var/lib/ferry/migrations/*/levels 2>/dev/null']).stdout).toBe('');
}, 600_000);

test('--lazy-restore with a strategy other than hash-pre-copy is refused before anything is frozen', async () => {
  const c = startContainer(16);
  const run = await ferryOn('h1', ['migrate', c.name, '--to', 'h2', '--hosts-file', HOSTS_FILE, '--strategy', 'stop-and-copy', '--lazy-restore']);
  expect(run.error?.code).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(run.error?.hint).toMatch(/hash-pre-copy/);
  expect(state('h1', c.name)).toMatchObject({ exists: true, state: 'running' });
  expect(migrationsOf('h2', c.name)).toHaveLength(0);
});

/** Kills, in h2's own pid namespace, the processes whose command line matches `pattern`; whether there were any. */
const killOnH2 = (pattern: string) => onHost('h2', ['pkill', '-KILL', '-f', pattern]).status === 0;

/** The done outcome in the source's journal of move `id`. */
const outcomeOf = (id: string) =>
  onHost('h1', ['cat', `/var/lib/ferry/migrations/${id}/journal`]).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { t: string; outcome?: string }).find((r) => r.t === 'done')?.outcome;

test('kill -9 of the destination agent while the copy fills: the detached relay finishes the fill, the copy is kept with its TCP connection, memory intact', async () => {
  // A slow fill: 1 GiB whose workload keeps faulting; the agent dies at the start of the fill phase.
  const c = startContainer(1024, false, 5243);
  const client = connectClient(c);
  await client.waitFor(/tick \d+/);
  const before = state('h1', c.name).workload!.counter;
  let id = '';
  let killed = false;
  const run = await ferryOn('h1', migrate(c.name, ...SLOW_FILL), (e) => {
    if (e.event === 'guardian') id = e.id as string;
    if (e.event === 'phase-start' && e.phase === 'transfer-pages' && !killed) killed = killOnH2('/bin/ferry agent');
  });
  expect(killed).toBe(true);
  expect(run.error).toBeUndefined();
  expect(outcomeOf(id)).toBe('moved');
  await expectMovedWithConnection(c.name, client, before, 30_000);
  // Settled by a later agent from the relay's report, not by the one that died having seen the end of the fill.
  expect(onHost('h2', ['cat', `/var/lib/ferry/migrations/${id}/journal`]).stdout).toMatch(/the page relay filled the copy after its agent died/);
  expect(onHost('h2', ['sh', '-c', 'ls -d /var/lib/ferry/migrations/*/relay /var/lib/ferry/migrations/*/levels 2>/dev/null']).stdout).toBe('');
  await waitFor('no page relay left on h2', () => onHost('h2', ['pgrep', '-f', 'page-relay --config']).status !== 0, 15_000, 250);
}, 600_000);

test.each([
  ['the page relay', 'page-relay --config'],
  ["CRIU's lazy-pages daemon", 'sbin/criu( |$)'],
])('kill -9 of %s while the copy fills: the copy is removed before it can read a missing page, the source takes the container back, memory intact', async (_what, pattern) => {
  const c = startContainer(1024, false, 5243);
  let killed = false;
  const run = await ferryOn('h1', migrate(c.name, ...SLOW_FILL), (e) => {
    if (e.event === 'phase-start' && e.phase === 'transfer-pages' && !killed) killed = killOnH2(pattern);
  });
  expect(killed).toBe(true);
  expect(run.error).toBeDefined();
  await expectRolledBack(c.name);
  expect(ctl('h1', 'verify', c.name)).toEqual({ verdict: 'ok' });
  await waitFor('h2 clean', () => !state('h2', c.name).exists && migrationsOf('h2', c.name).length === 0, 30_000, 250);
  expect(onHost('h2', ['pgrep', '-f', 'page-relay --config|sbin/criu( |$)']).stdout.trim()).toBe('');
}, 600_000);
