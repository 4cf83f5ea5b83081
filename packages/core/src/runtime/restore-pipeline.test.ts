/**
 * The restore pipeline's order and contract against a fake hook set: checks before anything happens, the record's
 * CRIU flags repeated unless overridden, and every registered undo run (newest first) whatever step fails.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError, isFerryError } from '../model/ferry-error';
import { RECORD_FORMAT, writeCheckpointRecord } from './checkpoint-record';
import { restoreContainer, type RestoreHooks } from './restore-pipeline';
import type { ToolOutcome } from './run-tool';

let dir: string;
let images: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-restore-pipeline-'));
  images = join(dir, 'images');
  mkdirSync(images);
  writeFileSync(join(images, 'inventory.img'), '');
  const criu = { tcpEstablished: true, fileLocks: true, extUnixSk: false, leaveRunning: false };
  writeCheckpointRecord(images, { format: RECORD_FORMAT, runtime: 'runc', id: 'web', bundle: '/b', config: {}, criu, checkpointedAt: 't' });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ok = (over: Partial<ToolOutcome> = {}): ToolOutcome => ({
  args: ['restore'],
  exitCode: 0,
  stdout: '',
  stderr: '',
  errorText: '',
  timedOut: false,
  aborted: false,
  durationMs: 9,
  ok: true,
  ...over,
});

function fakeHooks(steps: string[], run: () => ToolOutcome = () => ok()): RestoreHooks<'runc', string> {
  return {
    runtime: 'runc',
    label: 'fake',
    timeouts: { checkpointTimeoutMs: 1, restoreTimeoutMs: 50 },
    toolHint: 'h',
    assertName: (name) => {
      if (name.startsWith('-')) throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'bad name');
    },
    exists: async (name) => {
      steps.push(`exists ${name}`);
      return name === 'taken';
    },
    manualCommands: (name) => ({ thaw: `fake thaw ${name}`, remove: `fake rm ${name}` }),
    prepare: async (plan, revert) => {
      steps.push(`prepare tcp=${plan.criu.tcpEstablished} locks=${plan.criu.fileLocks}`);
      revert.add(() => void steps.push('undo 1'));
      revert.add(() => {
        steps.push('undo 2');
        throw new Error('an undo that fails does not stop the others');
      });
      return 'P';
    },
    run: async (prepared) => {
      steps.push(`run ${prepared}`);
      return run();
    },
    restoreLog: (_p, plan) => join(plan.workDir, 'restore.log'),
    recover: async (_p, _plan, o) => void steps.push(`recover timedOut=${o.timedOut}`),
    finish: async (_p, plan) => {
      steps.push('finish');
      if (plan.name === 'dies') throw new FerryError('ERR_CRIU_RESTORE_FAILED', 'restored but stopped');
      return { ref: { runtime: 'runc', id: plan.name }, state: 'running', pid: 7 };
    },
  };
}

test('a restore reads the record, repeats its CRIU flags unless told otherwise, and keeps what it made', async () => {
  const steps: string[] = [];
  const result = await restoreContainer(fakeHooks(steps), { imagesDir: images, name: 'copy', fileLocks: false });
  expect(steps).toEqual(['exists copy', 'prepare tcp=true locks=false', 'run P', 'finish']);
  expect(result).toEqual({
    container: { ref: { runtime: 'runc', id: 'copy' }, state: 'running', pid: 7 },
    restoreMs: 9,
    steps: { prepareMs: expect.any(Number), toolMs: 9, finishMs: expect.any(Number) },
  });
});

// CRIU's stats-restore of a real restore (image-records.test.ts): restore time 21704 us, 2066 pages restored.
const STATS_RESTORE = '40591055063309570f000000120d08001000180120c8a901289210';

test("a restore reports CRIU's own time when CRIU wrote its stats during the run, and not an older file's", async () => {
  const written = () => {
    writeFileSync(join(images, 'stats-restore'), Buffer.from(STATS_RESTORE, 'hex'));
    return ok();
  };
  const fresh = await restoreContainer(fakeHooks([], written), { imagesDir: images, name: 'copy' });
  expect(fresh.steps?.criu).toEqual({ restoreMs: expect.closeTo(21.7, 1), forkingMs: expect.any(Number), pagesRestored: 2066 });

  const old = new Date(Date.now() - 60_000);
  utimesSync(join(images, 'stats-restore'), old, old);
  const stale = await restoreContainer(fakeHooks([]), { imagesDir: images, name: 'copy' });
  expect(stale.steps).toBeDefined();
  expect(stale.steps?.criu).toBeUndefined();
});

test('bad input and a taken name are refused before anything is prepared', async () => {
  for (const [options, code] of [
    [{ imagesDir: dir }, 'ERR_IMAGE_NOT_FOUND'],
    [{ imagesDir: images, name: '-x' }, 'ERR_PRECHECK_BAD_INPUT'],
    [{ imagesDir: images, name: 'taken' }, 'ERR_RUNTIME_NAME_TAKEN'],
    [{ imagesDir: images, signal: AbortSignal.abort() }, 'ERR_ABORTED'],
  ] as const) {
    const steps: string[] = [];
    const err = await restoreContainer(fakeHooks(steps), options).catch((e: unknown) => e);
    expect(isFerryError(err, code)).toBe(true);
    expect(steps.filter((s) => !s.startsWith('exists'))).toEqual([]);
  }
  const taken = (await restoreContainer(fakeHooks([]), { imagesDir: images, name: 'taken' }).catch((e: unknown) => e)) as FerryError;
  expect(taken).toMatchObject({ code: 'ERR_RUNTIME_NAME_TAKEN', message: 'fake already has a container named taken', hint: 'Restore under another name, or remove it first (`fake rm taken`).' });
  // A record of another runtime names it in the hint.
  writeFileSync(join(images, 'ferry-container.json'), JSON.stringify({ format: RECORD_FORMAT, runtime: 'lxc', id: 'web', lxcpath: '/l', containerDir: '/l/web' }));
  const err = (await restoreContainer(fakeHooks([]), { imagesDir: images }).catch((e: unknown) => e)) as FerryError;
  expect(err).toMatchObject({ code: 'ERR_IMAGE_CORRUPT', hint: 'It was written for lxc: restore it with --runtime lxc.' });
});

test('every undo runs, newest first, when the tool fails, when it is killed, and when the last step fails', async () => {
  const failed: string[] = [];
  const err = (await restoreContainer(fakeHooks(failed, () => ok({ ok: false, exitCode: 1, errorText: 'no' })), { imagesDir: images }).catch((e: unknown) => e)) as FerryError;
  expect(err.code).toBe('ERR_RUNTIME_FAILED'); // no CRIU log: the tool failed by itself
  expect(failed.slice(-3)).toEqual(['recover timedOut=false', 'undo 2', 'undo 1']);

  const killed: string[] = [];
  const timeout = (await restoreContainer(fakeHooks(killed, () => ok({ ok: false, exitCode: null, timedOut: true })), { imagesDir: images }).catch((e: unknown) => e)) as FerryError;
  expect(timeout.code).toBe('ERR_CRIU_TIMEOUT');
  expect(timeout.hint).toMatch(/truncated pages image/);
  expect(killed.slice(-3)).toEqual(['recover timedOut=true', 'undo 2', 'undo 1']);

  const died: string[] = [];
  await expect(restoreContainer(fakeHooks(died), { imagesDir: images, name: 'dies' })).rejects.toMatchObject({ code: 'ERR_CRIU_RESTORE_FAILED' });
  expect(died.slice(-3)).toEqual(['finish', 'undo 2', 'undo 1']);
});

test('without a record the name must be given', async () => {
  rmSync(join(images, 'ferry-container.json'));
  await expect(restoreContainer(fakeHooks([]), { imagesDir: images })).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  const steps: string[] = [];
  await restoreContainer(fakeHooks(steps), { imagesDir: images, name: 'given' });
  expect(steps[1]).toBe('prepare tcp=false locks=false');
});
