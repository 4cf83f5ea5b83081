/**
 * The checkpoint pipeline's order and contract against a fake hook set (no runtime, no CRIU): what runs when, what
 * is refused before anything is read, when the record is written, how a failed or killed dump is recovered and
 * reported, and what the caller gets back.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerInfo } from '../model/container';
import { checkpointContainer, type DumpHooks } from './checkpoint-pipeline';
import { RECORD_FILE } from './checkpoint-record';
import type { ToolOutcome } from './run-tool';
import { rejection } from '../testing/rejection';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-pipeline-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const RUNNING: ContainerInfo = { ref: { runtime: 'runc', id: 'web' }, state: 'running', pid: 4242, freezerPath: '/sys/fs/cgroup/freezer/web', rootfs: '/r' };

function outcome(over: Partial<ToolOutcome> = {}): ToolOutcome {
  return { args: ['checkpoint', 'web'], exitCode: 0, stdout: '', stderr: '', errorText: '', timedOut: false, aborted: false, durationMs: 5, ok: true, ...over };
}

/** Hooks that note each call in `steps`; `dump` is the fake tool. */
function fakeHooks(dump: (imagesDir: string) => ToolOutcome | Promise<ToolOutcome>, steps: string[] = []): DumpHooks<'runc', string> & { steps: string[] } {
  return {
    steps,
    runtime: 'runc',
    label: 'fake',
    timeouts: { checkpointTimeoutMs: 1234, restoreTimeoutMs: 1 },
    toolHint: 'check the fake',
    check: () => void steps.push('check'),
    find: async (ref) => {
      steps.push('find');
      return { before: { ...RUNNING, ref }, target: 'T' };
    },
    preflight: async () => void steps.push('preflight'),
    recordExtras: ({ target }) => {
      steps.push('recordExtras');
      return { bundle: `/bundles/${target}`, config: {} };
    },
    dump: async (_found, plan, record) => {
      steps.push(`dump leaveRunning=${plan.leaveRunning} record=${existsSync(join(plan.imagesDir, RECORD_FILE))}`);
      record.bundle = '/bundles/completed-by-dump';
      return dump(plan.imagesDir);
    },
    dumpLog: (plan) => join(plan.workDir, 'dump.log'),
    recover: async (_found, o) => void steps.push(`recover timedOut=${o.timedOut} aborted=${o.aborted}`),
    afterDump: async () => void steps.push('afterDump'),
    inspect: async (id) => {
      steps.push(`inspect ${id}`);
      return { ...RUNNING, state: 'paused' };
    },
  };
}


test('runs check, find, preflight, record, dump, afterDump, then writes the record and reports the stopped container', async () => {
  const hooks = fakeHooks(() => outcome());
  const imagesDir = join(dir, 'images');
  const result = await checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, { imagesDir, tcpEstablished: true });
  expect(hooks.steps).toEqual(['check', 'find', 'preflight', 'recordExtras', 'dump leaveRunning=false record=false', 'afterDump']);
  expect(statSync(imagesDir).mode & 0o777).toBe(0o700);
  const record = JSON.parse(readFileSync(join(imagesDir, RECORD_FILE), 'utf8'));
  expect(record).toMatchObject({
    format: 'ferry-container/1',
    runtime: 'runc',
    id: 'web',
    rootfs: '/r',
    bundle: '/bundles/completed-by-dump',
    criu: { tcpEstablished: true, fileLocks: false, extUnixSk: false, leaveRunning: false },
  });
  expect(statSync(join(imagesDir, RECORD_FILE)).mode & 0o777).toBe(0o600);
  // Without leaveRunning the dump ended the tasks: stopped, no pid, no freezer.
  expect(result.container).toEqual({ ref: { runtime: 'runc', id: 'web' }, state: 'stopped', rootfs: '/r' });
  expect(result.stats.totalMs).toBe(5);
});

test('leaveRunning (or a pre-dump) inspects the container afterwards; a lazy dump writes the record first and reports it stopped', async () => {
  const kept = fakeHooks(() => outcome());
  const result = await checkpointContainer(kept, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'a'), preDump: true });
  expect(kept.steps.slice(-2)).toEqual(['afterDump', 'inspect web']);
  expect(result.container.state).toBe('paused');

  const lazy = fakeHooks(() => outcome());
  const lazyResult = await checkpointContainer(lazy, { runtime: 'runc', id: 'web' }, {
    imagesDir: join(dir, 'b'),
    leaveRunning: true,
    lazyPages: { address: '127.0.0.1', port: 1, onReady: () => undefined },
  });
  expect(lazy.steps).toContain('dump leaveRunning=true record=true');
  expect(lazy.steps).not.toContain('inspect web');
  expect(lazyResult.container.state).toBe('stopped');
});

test('refuses before anything is read: the hook\'s own check, onNotify, a path that is no network namespace, an abort', async () => {
  const refusing = fakeHooks(() => outcome());
  refusing.check = () => {
    throw Object.assign(new Error('x'), {});
  };
  await expect(checkpointContainer(refusing, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'i') })).rejects.toThrow('x');

  const cases: [string, Parameters<typeof checkpointContainer>[2], string][] = [
    ['notify', { imagesDir: join(dir, 'i'), onNotify: () => true }, 'ERR_PRECHECK_BAD_INPUT'],
    ['netns', { imagesDir: join(dir, 'i'), netnsPath: '/etc/hostname' }, 'ERR_PRECHECK_BAD_INPUT'],
    ['relative netns', { imagesDir: join(dir, 'i'), netnsPath: 'proc/self/ns/net' }, 'ERR_PRECHECK_BAD_INPUT'],
    ['aborted', { imagesDir: join(dir, 'i'), signal: AbortSignal.abort() }, 'ERR_ABORTED'],
  ];
  for (const [what, options, code] of cases) {
    const hooks = fakeHooks(() => outcome());
    const err = await rejection(checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, options));
    expect([what, err.code]).toEqual([what, code]);
    expect(hooks.steps).toEqual(['check']);
  }
  expect(existsSync(join(dir, 'i'))).toBe(false);
});

test('a namespace path is handed to the dump', async () => {
  let seen: string | undefined;
  const hooks = fakeHooks(() => outcome());
  const dump = hooks.dump;
  hooks.dump = (found, plan, record) => {
    seen = plan.netnsPath;
    return dump(found, plan, record);
  };
  await checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'i'), netnsPath: '/proc/self/ns/net' });
  expect(seen).toBe('/proc/self/ns/net');
});

test('a failed dump is recovered, writes no record, and quotes the CRIU log without the harmless RLIMIT line', async () => {
  const workDir = join(dir, 'work');
  const hooks = fakeHooks(() => {
    writeFileSync(
      join(workDir, 'dump.log'),
      [
        "(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
        "(00.04) Error (criu/files-reg.c:1790): Can't lookup mount=27 for fd=2 path=/tmp/rx/run.err",
        '(00.11) Error (criu/cr-dump.c:1975): Dumping FAILED.',
      ].join('\n'),
    );
    return outcome({ ok: false, exitCode: 1, errorText: 'criu failed: type NOTIFY errno 0' });
  });
  const imagesDir = join(dir, 'images');
  const err = await rejection(checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, { imagesDir, workDir, preDump: true }));
  expect(err.code).toBe('ERR_CRIU_PRE_DUMP_FAILED');
  expect(err.message).toContain("Can't lookup mount=27");
  expect(err.message).not.toContain('RLIMIT_NOFILE');
  expect(err.details).toMatchObject({ logPath: join(workDir, 'dump.log'), toolError: 'criu failed: type NOTIFY errno 0' });
  expect(hooks.steps).toContain('recover timedOut=false aborted=false');
  expect(hooks.steps).not.toContain('afterDump');
  expect(existsSync(join(imagesDir, RECORD_FILE))).toBe(false);
});

test('a tool that failed before CRIU ran is ERR_RUNTIME_FAILED; an old log does not count as this run\'s', async () => {
  const workDir = join(dir, 'work');
  const hooks = fakeHooks(() => {
    writeFileSync(join(workDir, 'dump.log'), '(00.04) Error (criu/x.c:1): an old failure\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(workDir, 'dump.log'), old, old);
    return outcome({ ok: false, exitCode: 1, errorText: 'container does not exist' });
  });
  const err = await rejection(checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'i'), workDir }));
  expect(err).toMatchObject({ code: 'ERR_RUNTIME_FAILED', message: 'fake checkpoint of web failed: container does not exist', hint: 'check the fake' });

  // A tool that names CRIU in its own messages (liblxc) counts as CRIU having run, log or not.
  const named = fakeHooks(() => outcome({ ok: false, exitCode: 1, errorText: 'criu dump failed' }));
  named.criuNamed = (o) => /criu/.test(o.errorText);
  expect((await rejection(checkpointContainer(named, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'j') }))).code).toBe('ERR_CRIU_DUMP_FAILED');
});

test('a dump killed at its deadline is ERR_CRIU_TIMEOUT, one stopped by the caller ERR_ABORTED; both are recovered', async () => {
  const timedOut = fakeHooks(() => outcome({ ok: false, exitCode: null, timedOut: true }));
  const err = await rejection(checkpointContainer(timedOut, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'a') }));
  expect(err.code).toBe('ERR_CRIU_TIMEOUT');
  expect(err.message).toContain('within 1234 ms');
  expect(timedOut.steps).toContain('recover timedOut=true aborted=false');

  const aborted = fakeHooks(() => outcome({ ok: false, exitCode: null, aborted: true }));
  expect((await rejection(checkpointContainer(aborted, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'b') }))).code).toBe('ERR_ABORTED');
  expect(aborted.steps).toContain('recover timedOut=false aborted=true');
});

test('a dump hook that throws leaves the error as it is (the hook undid its own side effects)', async () => {
  const hooks = fakeHooks(() => {
    throw new Error('cannot start');
  });
  await expect(checkpointContainer(hooks, { runtime: 'runc', id: 'web' }, { imagesDir: join(dir, 'i') })).rejects.toThrow('cannot start');
  expect(hooks.steps).not.toContain('afterDump');
});

test('a hold pauses a running container around the dump and thaws it after a failure or a dump that left it running', async () => {
  const held = (dump: () => ToolOutcome, state: ContainerInfo['state'] = 'running') => {
    const hooks = fakeHooks(dump);
    delete hooks.recover;
    const find = hooks.find;
    hooks.find = async (ref) => ({ ...(await find(ref)), before: { ...RUNNING, ref, state } });
    hooks.hold = { pause: async () => void hooks.steps.push('pause'), thaw: async () => void hooks.steps.push('thaw') };
    return hooks;
  };
  const ref = { runtime: 'runc', id: 'web' } as const;

  const ended = held(() => outcome());
  await checkpointContainer(ended, ref, { imagesDir: join(dir, 'a') });
  expect(ended.steps.slice(3)).toEqual(['recordExtras', 'pause', 'dump leaveRunning=false record=false', 'afterDump']);

  const kept = held(() => outcome());
  await checkpointContainer(kept, ref, { imagesDir: join(dir, 'b'), leaveRunning: true });
  expect(kept.steps.slice(4)).toEqual(['pause', 'dump leaveRunning=true record=false', 'afterDump', 'thaw', 'inspect web']);

  const failed = held(() => outcome({ ok: false, exitCode: 1, timedOut: true }));
  expect((await rejection(checkpointContainer(failed, ref, { imagesDir: join(dir, 'c') }))).code).toBe('ERR_CRIU_TIMEOUT');
  expect(failed.steps.slice(4)).toEqual(['pause', 'dump leaveRunning=false record=false', 'thaw']);

  const throwing = held(() => {
    throw new Error('cannot save the layer');
  });
  throwing.hold!.thaw = async () => {
    throwing.steps.push('thaw');
    throw new Error('thaw failed too');
  };
  await expect(checkpointContainer(throwing, ref, { imagesDir: join(dir, 'd') })).rejects.toThrow('cannot save the layer');
  expect(throwing.steps.slice(-1)).toEqual(['thaw']);

  // Paused already (the migration's hold): neither paused nor thawed here; its owner thaws it.
  const pausedFailed = held(() => outcome({ ok: false, exitCode: 1 }), 'paused');
  await rejection(checkpointContainer(pausedFailed, ref, { imagesDir: join(dir, 'e'), leaveRunning: true }));
  const pausedKept = held(() => outcome(), 'paused');
  await checkpointContainer(pausedKept, ref, { imagesDir: join(dir, 'f'), leaveRunning: true });
  for (const { steps } of [pausedFailed, pausedKept]) expect(steps.filter((s) => s === 'pause' || s === 'thaw')).toEqual([]);

  const refused = held(() => outcome());
  refused.hold!.pause = async () => {
    throw new Error('pause refused');
  };
  await expect(checkpointContainer(refused, ref, { imagesDir: join(dir, 'g') })).rejects.toThrow('pause refused');
  expect(refused.steps).not.toContain('dump leaveRunning=false record=false');
});
