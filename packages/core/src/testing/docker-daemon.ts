/**
 * A dockerd of the test's own (no registry, no systemd here): `dockerd --experimental --storage-driver=vfs
 * --iptables=false --bridge=none` with its own data root, exec root, pid file, socket and cgroup parent, all named
 * ferry-dk-TAG so that nothing collides with another test or another engineer's daemons. stop() leaves nothing
 * behind: containers, the daemon and its containerd, mounts below its directories, the directories, the cgroups.
 * Images come from `docker import` of the test rootfs (busybox-static + the static fixtures).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCgroupLayout } from '../host/cgroup-layout';
import { killQuietly } from './cleanups';
import { buildTestRootfs } from './runc-container';
import { waitFor } from './workload';

/** Debian's docker.io client; /usr/local/bin/docker may be another one. */
export const DOCKER_CLI = '/usr/bin/docker';
export const TEST_IMAGE = 'ferry-dk-test:1';

export interface DockerdPaths {
  socket: string;
  dataRoot: string;
  execRoot: string;
  pidfile: string;
  configFile: string;
  cgroupParent: string;
}

/** Paths of a test daemon named ferry-dk-TAG under RUN and LIB (the sandbox hosts pass their private tmpfs dirs). */
export function dockerdPaths(tag: string, dirs: { run: string; lib: string; socket?: string } = { run: '/run', lib: '/var/lib' }): DockerdPaths {
  const runDir = join(dirs.run, `ferry-dk-${tag}`);
  return {
    socket: dirs.socket ?? join(runDir, 'docker.sock'),
    execRoot: join(runDir, 'exec'),
    pidfile: join(runDir, 'dockerd.pid'),
    configFile: join(runDir, 'daemon.json'),
    dataRoot: join(dirs.lib, `ferry-dk-${tag}`),
    cgroupParent: `/ferry-dk-${tag}`,
  };
}

export function dockerdArgv(p: DockerdPaths, options: { experimental?: boolean } = {}): string[] {
  return [
    'dockerd',
    ...(options.experimental === false ? [] : ['--experimental']),
    '--storage-driver=vfs',
    '--iptables=false',
    '--bridge=none',
    '--data-root', p.dataRoot,
    '--exec-root', p.execRoot,
    '--pidfile', p.pidfile,
    '--config-file', p.configFile,
    '--cgroup-parent', p.cgroupParent,
    '-H', `unix://${p.socket}`,
  ];
}

export interface TestDockerd {
  paths: DockerdPaths;
  dockerHost: string;
  pid: number;
  /** /usr/bin/docker against this daemon; throws with its stderr when it fails. */
  docker(args: string[], input?: Buffer): string;
  stop(): Promise<void>;
}

/** Starts a daemon in this host's namespaces and waits until it answers; imports the test image. */
export async function startTestDockerd(tag: string, options: { experimental?: boolean } = {}): Promise<TestDockerd> {
  const paths = dockerdPaths(tag);
  mkdirSync(join(paths.execRoot, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(paths.configFile, '{}\n');
  const logPath = join(paths.execRoot, '..', 'dockerd.log');
  const log = openSync(logPath, 'a');
  const argv = dockerdArgv(paths, options);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  const pid = child.pid!;
  const dockerHost = `unix://${paths.socket}`;
  const docker = (args: string[], input?: Buffer) => runDocker(dockerHost, args, input);
  const daemon: TestDockerd = { paths, dockerHost, pid, docker, stop: () => stopTestDockerd(pid, paths, dockerHost) };
  try {
    await waitFor('dockerd to answer', () => existsSync(paths.socket) && spawnSync(DOCKER_CLI, ['-H', dockerHost, 'version'], { stdio: 'ignore' }).status === 0, 60_000, 200);
    importTestImage(docker);
    return daemon;
  } catch (err) {
    const text = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n') : '';
    await daemon.stop();
    throw new Error(`could not start the test dockerd: ${(err as Error).message}\n${text}`);
  }
}

/** `docker import` of the test rootfs as TEST_IMAGE (no registry here). */
export function importTestImage(docker: (args: string[], input?: Buffer) => string): void {
  const tar = spawnSync('tar', ['-C', buildTestRootfs(), '-c', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar of the test rootfs failed: ${tar.stderr}`);
  docker(['import', '-', TEST_IMAGE], tar.stdout);
}

export function runDocker(dockerHost: string, args: string[], input?: Buffer): string {
  const r = spawnSync(DOCKER_CLI, ['-H', dockerHost, ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The workload's argv in a Docker container: its state file in the container's /tmp, read through /proc/PID/root. */
export function dockerWorkloadArgs(memMib: number, dirtyPagesPerSec = 2000): string[] {
  return ['/usr/bin/workload', '--state', '/tmp/state', '--mem-mib', String(memMib), '--dirty-pages-per-sec', String(dirtyPagesPerSec)];
}

async function stopTestDockerd(pid: number, paths: DockerdPaths, dockerHost: string): Promise<void> {
  // Containers first, with SIGKILL: the workload is its container's pid 1 and ignores SIGTERM, so dockerd's own
  // shutdown would wait 10 s per container.
  try {
    const ids = runDocker(dockerHost, ['ps', '-aq']).split('\n').filter(Boolean);
    if (ids.length > 0) runDocker(dockerHost, ['rm', '-f', ...ids]);
  } catch {
    /* daemon not answering: the kill below ends what is left */
  }
  const family = descendants(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const gone = () => !existsSync(`/proc/${pid}`) || /^State:\s*Z/m.test(readText(`/proc/${pid}/status`));
  await waitFor('dockerd to exit', gone, 20_000, 100).catch(() => undefined);
  killQuietly(pid, ...family);
  await waitFor('dockerd and its containerd to exit', () => [pid, ...family].every((p) => !existsSync(`/proc/${p}`) || /^State:\s*Z/m.test(readText(`/proc/${p}/status`))), 10_000, 100).catch(() => undefined);
  unmountBelow([paths.dataRoot, paths.execRoot]);
  rmSync(paths.dataRoot, { recursive: true, force: true });
  rmSync(join(paths.execRoot, '..'), { recursive: true, force: true });
  removeCgroupParent(paths.cgroupParent);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Every descendant pid of `pid` (containerd, shims), read before the kill so that orphans are still found. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const task of safeReaddir(`/proc/${p}/task`)) {
      for (const child of readText(`/proc/${p}/task/${task}/children`).split(' ').filter(Boolean).map(Number)) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** Lazily unmounts whatever is mounted under the given directories, deepest first. */
export function unmountBelow(dirs: readonly string[]): void {
  const mountpoints = readText('/proc/self/mountinfo')
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((mp) => dirs.some((d) => mp === d || mp.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mp of mountpoints) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
}

/** rmdir of the daemon's cgroup parent in every hierarchy (empty once its containers are gone). */
export function removeCgroupParent(cgroupParent: string): void {
  const layout = parseCgroupLayout(readText('/proc/self/mountinfo'));
  const roots = new Set([...Object.values(layout.v1Controllers), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])]);
  for (const root of roots) {
    const dir = join(root, cgroupParent);
    for (const child of safeReaddir(dir)) {
      try {
        rmdirSync(join(dir, child));
      } catch {
        /* a cgroup file, or busy */
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      /* gone or busy */
    }
  }
}
