/**
 * A lazily dumped source for page-path tests, as docs/design/crash-safety.md section 4 runs one: the workload fixture
 * (init of its own PID namespace, in a freezer cgroup of its own) and `criu dump --lazy-pages` both inside a private
 * network namespace, so the lazy dump's page server on 127.0.0.1:LAZY_SOURCE_PORT is reachable only from there.
 *
 *   const src = await startLazySource({ dir, memMib: 64 });
 *   await src.ready;              // images written, page server listening, tasks held by CRIU
 *   ... src.pid (host pid), src.imagesDir, src.netns ...
 *   await src.stop();             // kills CRIU and the workload, removes the cgroup
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, type FdHandle } from '@ferry/native';
import { commandInNetns, stdioWithNetns } from '../host/netns-exec';
import { createImageDir } from '../image/image-dir';
import { buildFixture } from './fixtures';
import { killQuietly } from './cleanups';
import { waitFor, waitForCounter, workloadArgs } from './workload';

/** Any port will do: nothing else lives in the namespace. */
export const LAZY_SOURCE_PORT = 27000;
const FREEZER_ROOT = '/sys/fs/cgroup/freezer/ferry-test';

export interface LazySourceOptions {
  /** Working directory (images, work, state file) — the caller removes it. */
  dir: string;
  memMib?: number;
  dirtyPagesPerSec?: number;
  /** Extra `criu dump` arguments. */
  criuArgs?: string[];
}

export interface LazySource extends NetnsWorkload {
  imagesDir: string;
  workDir: string;
  dump: ChildProcess;
  /** Resolves once CRIU wrote its status byte (images complete, page server listening); rejects if it exits first. */
  ready: Promise<void>;
  /** The dump's exit. */
  dumpExited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface NetnsWorkload {
  netns: FdHandle;
  /** Host pid of the workload (init of its PID namespace; 1 inside, CRIU's image pid). */
  pid: number;
  stateFile: string;
  freezerPath: string;
  /** Kills the workload (thawing its cgroup first), closes the namespace handle, removes the cgroup. */
  stop(): Promise<void>;
}

/** The workload fixture inside a new private network namespace, in a freezer cgroup of its own. */
export async function startNetnsWorkload(options: { dir: string; memMib?: number; dirtyPagesPerSec?: number; exerciseMib?: number }): Promise<NetnsWorkload> {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const netns = await createNetns();
  const name = `lazy-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const freezerPath = join(FREEZER_ROOT, name);
  mkdirSync(freezerPath, { recursive: true });
  const stateFile = join(options.dir, 'state');
  const binary = buildFixture('workload');
  const launch = commandInNetns('unshare', ['--pid', '--fork', 'setsid', binary, ...workloadArgs({ stateFile, memMib: options.memMib ?? 16, dirtyPagesPerSec: options.dirtyPagesPerSec, exerciseMib: options.exerciseMib })]);
  const launcher = spawn(launch.file, launch.args, { stdio: stdioWithNetns(netns.fd), detached: true });
  const launcherPid = launcher.pid!;
  const stopAll: (() => void)[] = [() => netns.close()];
  try {
    // nsenter execs unshare in place, which forks the workload: it is the launcher's only child.
    const pid = await waitFor('the workload process', () => {
      try {
        const child = Number(readFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8').trim().split(' ')[0]);
        return child > 0 && readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith(binary) ? child : undefined;
      } catch {
        return undefined;
      }
    });
    stopAll.push(() => killQuietly(pid, launcherPid));
    writeFileSync(join(freezerPath, 'cgroup.procs'), String(pid));
    // The workload fills its memory before its first tick: seconds per GiB on a busy machine.
    await waitForCounter(stateFile, 2, 15_000 + (options.memMib ?? 16) * 60);
    return { netns, pid, stateFile, freezerPath, stop: () => stopWorkload(stopAll, freezerPath) };
  } catch (error) {
    await stopWorkload(stopAll, freezerPath);
    throw error;
  }
}

async function stopWorkload(stopAll: (() => void)[], freezerPath: string): Promise<void> {
  // Kill, then thaw: a frozen task never dies (cgroup v1), and CRIU waits for the tasks it killed.
  for (const stop of stopAll.splice(0).reverse()) stop();
  try {
    writeFileSync(join(freezerPath, 'freezer.state'), 'THAWED');
  } catch {
    /* gone */
  }
  await waitFor('the cgroup to empty', () => !existsSync(freezerPath) || readFileSync(join(freezerPath, 'cgroup.procs'), 'utf8').trim() === '', 10_000).catch(() => undefined);
  try {
    rmdirSync(freezerPath);
  } catch {
    /* still busy: left for the next run */
  }
}

export async function startLazySource(options: LazySourceOptions): Promise<LazySource> {
  return lazyDump(await startNetnsWorkload(options), options);
}

/** Dumps a running netns workload lazily (see startLazySource); on failure the workload is stopped. */
export async function lazyDump(workload: NetnsWorkload, options: Pick<LazySourceOptions, 'dir' | 'criuArgs'>): Promise<LazySource> {
  const { netns, pid, stateFile, freezerPath } = workload;
  try {
    const imagesDir = createImageDir(join(options.dir, 'images'));
    const workDir = join(options.dir, 'work');
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const statusPath = join(workDir, 'status');
    const statusFd = openSync(statusPath, 'w', 0o600);
    const argv = commandInNetns('criu', [
      'dump', '-t', String(pid), '-D', imagesDir, '-W', workDir, '--lazy-pages', '--address', '127.0.0.1',
      '--port', String(LAZY_SOURCE_PORT), '--status-fd', '3', '-o', 'dump.log', '-v4', ...(options.criuArgs ?? []),
    ]);
    const dump = spawn(argv.file, argv.args, { stdio: stdioWithNetns(netns.fd, ['ignore', 'ignore', 'ignore', statusFd]) });
    closeSync(statusFd);
    const dumpExited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => dump.once('exit', (code, signal) => resolve({ code, signal })));
    const ready = (async () => {
      let gone: string | undefined;
      void dumpExited.then((e) => (gone = `criu dump exited (${e.signal ?? e.code}); log ${join(workDir, 'dump.log')}`));
      await waitFor('the lazy dump', () => {
        if (gone) throw new Error(gone);
        return existsSync(statusPath) && statSync(statusPath).size > 0;
      }, 60_000);
    })();
    ready.catch(() => undefined);
    return {
      netns,
      pid,
      stateFile,
      imagesDir,
      workDir,
      freezerPath,
      dump,
      ready,
      dumpExited,
      stop: async () => {
        killQuietly(dump.pid!);
        await workload.stop();
      },
    };
  } catch (error) {
    await workload.stop();
    throw error;
  }
}

