import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPagesOutcome } from '../journal/decision';
import { Journal, migrationDir, readJournal } from '../journal/journal';
import { processId, type ProcessId } from '../journal/proc-identity';
import type { DestinationDeps } from './destination-moves';
import { RELAY_REPORT, type RelayOutcome } from '../pages/relay-process';
import { LOCAL_FILL_DIR } from './local-page-fill';
import { LAZY_PAGES_LOG, abandonPageLink, lazyPagesFinished, settleOrphanedPages } from './orphaned-pages';

const ID = 'move-0001-orphan';
let stateDir: string;
let children: ChildProcess[];
let removed: string[];
let deps: DestinationDeps;

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'ferry-orphan-'));
  children = [];
  removed = [];
  deps = {
    stateDir,
    log: () => undefined,
    runtime: () => ({ remove: async (name: string) => void removed.push(name) }) as unknown as ReturnType<DestinationDeps['runtime']>,
  };
});
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
});

/** A real process (its identity is pid + start time), alive until killed. */
async function live(): Promise<{ id: ProcessId; child: ChildProcess }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((r) => child.once('spawn', r));
  return { id: processId(child.pid!)!, child };
}

async function gone(): Promise<ProcessId> {
  const { id, child } = await live();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  return id;
}

function committedPostCopy(owner: ProcessId, daemon: ProcessId, log?: string, keeper?: ProcessId): void {
  const dir = migrationDir(stateDir, ID);
  const j = Journal.create(dir, { t: 'begin', role: 'destination', id: ID, runtime: 'runc', container: 'web', peer: 'h1' });
  j.hold({ kind: 'owner', pids: [owner] });
  if (keeper) j.hold({ kind: 'page-link', pids: [keeper] });
  j.hold({ kind: 'lazy-daemon', pids: [daemon] });
  j.hold({ kind: 'restored', name: 'web' });
  j.append({ t: 'committed' });
  j.close();
  if (log !== undefined) {
    mkdirSync(join(dir, 'work'));
    writeFileSync(join(dir, LAZY_PAGES_LOG), log);
  }
}

const FINISHED = '(00.100000) uffd: 1-13: UFFD transferred pages: (10/10)\n(00.100100) Disconnect from the page server\n';

test('the log counts as finished only after the disconnect, and only without an error line', () => {
  expect(lazyPagesFinished(FINISHED)).toBe(true);
  expect(lazyPagesFinished('(00.100000) uffd: 1-13: uffd_copy: 0x7f/4096\n')).toBe(false);
  expect(lazyPagesFinished(`(00.090000) Error (criu/uffd.c:1150): uffd: 1-13: Error during UFFD copy\n${FINISHED}`)).toBe(false);
});

test('agent gone, daemon still waiting: the copy is removed, then the daemon killed, and the pages are lost', async () => {
  const daemon = await live();
  const exited = new Promise((r) => daemon.child.once('exit', r));
  committedPostCopy(await gone(), daemon.id, FINISHED);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('lost');
  expect(removed).toEqual(['web']);
  await exited;
  expect(readPagesOutcome(stateDir, ID)).toBe('lost');
  expect(existsSync(migrationDir(stateDir, ID))).toBe(false);
});

test('agent and daemon gone, the log shows every page: kept, and settled once', async () => {
  committedPostCopy(await gone(), await gone(), FINISHED);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('complete');
  expect(removed).toEqual([]);
  expect(readPagesOutcome(stateDir, ID)).toBe('complete');
  expect(readJournal(migrationDir(stateDir, ID)).done).toEqual({ outcome: 'kept' });
  await expect(settleOrphanedPages(ID, deps)).resolves.toBeUndefined();
});

test('agent and daemon gone without a finished log: lost', async () => {
  committedPostCopy(await gone(), await gone(), '(00.100000) uffd: 1-13: uffd_copy: 0x7f/4096\n');
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('lost');
  expect(removed).toEqual(['web']);
});

test('a living agent, or a bad id, is left alone', async () => {
  const agent = await live();
  committedPostCopy(agent.id, (await live()).id, FINISHED);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBeUndefined();
  await expect(settleOrphanedPages('../../etc', deps)).resolves.toBeUndefined();
  expect(removed).toEqual([]);
  expect(readPagesOutcome(stateDir, ID)).toBeUndefined();
});

test('agent gone, the keeper of a resumable link still holds the stream: nothing is decided, the copy stays', async () => {
  const daemon = await live();
  const keeper = await live();
  committedPostCopy(await gone(), daemon.id, '', keeper.id);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBeUndefined();
  expect(removed).toEqual([]);
  expect(readPagesOutcome(stateDir, ID)).toBeUndefined();
  expect(daemon.child.exitCode).toBeNull();
});

test('the source abandons the link (its end was reset): the keeper is stopped, the copy removed, then the daemon killed', async () => {
  const daemon = await live();
  const keeper = await live();
  const daemonExited = new Promise((r) => daemon.child.once('exit', r));
  const keeperExited = new Promise((r) => keeper.child.once('exit', r));
  committedPostCopy(await gone(), daemon.id, '', keeper.id);
  await expect(abandonPageLink(ID, deps)).resolves.toBe('lost');
  await keeperExited;
  expect(removed).toEqual(['web']);
  await daemonExited;
  expect(readPagesOutcome(stateDir, ID)).toBe('lost');
});

test('abandoning a move whose pages all arrived changes nothing', async () => {
  const keeper = await live();
  committedPostCopy(await gone(), await gone(), FINISHED, keeper.id);
  // The keeper is alive (it has not noticed the end yet): abandon stops it, and the log says every page arrived.
  await expect(abandonPageLink(ID, deps)).resolves.toBe('complete');
  expect(removed).toEqual([]);
});

/** A committed lazy restore from local pages whose relay ran detached (hold `relay`), its report if any. */
function committedLocalFill(owner: ProcessId, daemon: ProcessId, relay: ProcessId, report?: RelayOutcome): void {
  const dir = migrationDir(stateDir, ID);
  const j = Journal.create(dir, { t: 'begin', role: 'destination', id: ID, runtime: 'runc', container: 'web', peer: 'h1' });
  j.hold({ kind: 'owner', pids: [owner] });
  j.hold({ kind: 'relay', pids: [relay] });
  j.hold({ kind: 'lazy-daemon', pids: [daemon] });
  j.hold({ kind: 'restored', name: 'web' });
  j.append({ t: 'committed' });
  j.close();
  mkdirSync(join(dir, LOCAL_FILL_DIR));
  if (report) writeFileSync(join(dir, LOCAL_FILL_DIR, RELAY_REPORT), JSON.stringify(report));
}

const LOST: RelayOutcome = { ok: false, code: 'ERR_POSTCOPY_DAEMON_LOST', message: 'post-copy: the lazy-pages daemon was killed by SIGKILL' };

test('agent gone, its detached relay still filling (no report): pending, nothing touched, whatever the daemon does', async () => {
  const daemon = await live();
  const relay = await live();
  committedLocalFill(await gone(), daemon.id, relay.id);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBeUndefined();
  expect(removed).toEqual([]);
  expect(readPagesOutcome(stateDir, ID)).toBeUndefined();
  expect(daemon.child.exitCode).toBeNull();
  expect(relay.child.exitCode).toBeNull();
});

test('agent gone, the relay reported every page in: kept, the relay directory removed, settled once', async () => {
  const relay = await live(); // not exited yet: it is let go
  const relayExited = new Promise((r) => relay.child.once('exit', r));
  committedLocalFill(await gone(), await gone(), relay.id, { ok: true, report: { pagesAnswered: 1, daemonRequests: 1, remotePages: 0, pull: {} as never } });
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('complete');
  await relayExited;
  expect(removed).toEqual([]);
  expect(readJournal(migrationDir(stateDir, ID)).done).toEqual({ outcome: 'kept' });
  expect(existsSync(join(migrationDir(stateDir, ID), LOCAL_FILL_DIR))).toBe(false);
  await expect(settleOrphanedPages(ID, deps)).resolves.toBeUndefined();
});

test('agent gone, the relay reported a loss and holds the userfaultfds: the copy is removed while it still holds them, then it and the daemon go', async () => {
  const daemon = await live();
  const relay = await live();
  const relayExited = new Promise((r) => relay.child.once('exit', r));
  committedLocalFill(await gone(), daemon.id, relay.id, LOST);
  const heldAtRemoval: boolean[] = [];
  deps.runtime = () => ({ remove: async (name: string) => void (removed.push(name), heldAtRemoval.push(relay.child.exitCode === null && relay.child.signalCode === null)) }) as never;
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('lost');
  expect(removed).toEqual(['web']);
  expect(heldAtRemoval).toEqual([true]);
  await relayExited;
  expect(readPagesOutcome(stateDir, ID)).toBe('lost');
  expect(existsSync(migrationDir(stateDir, ID))).toBe(false);
});

test('agent and relay gone without a report (killed): the daemon decides, as in post-copy', async () => {
  committedLocalFill(await gone(), (await live()).id, await gone());
  await expect(settleOrphanedPages(ID, deps)).resolves.toBe('lost');
  expect(removed).toEqual(['web']);
});
