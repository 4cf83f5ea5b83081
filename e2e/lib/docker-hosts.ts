/**
 * A dockerd inside each sandbox host (its own network, mount and pid namespaces), for the Docker e2e tests. Each
 * daemon keeps everything in the host's private tmpfs mounts (/run/ferry, /var/lib/ferry), listens on
 * /run/ferry/docker.sock (the DOCKER_HOST the sandbox's sshd and onHost() give ferry there) and puts its containers
 * under its own cgroup parent. stop() removes the containers, stops the daemon by the pid this process saw it get
 * (never by a pid file written inside the host's pid namespace), then the cgroup parent it used.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTestRootfs, descendants, dockerdArgv, dockerdPaths, removeCgroupParent, waitFor, type DockerdPaths } from '@ferry/core/testing';
import { HOST_DOCKER_HOST, ROOT, SANDBOX_DIR, SANDBOX_NAME, onHost } from './sandbox';

const SCRIPT = join(ROOT, 'scripts', 'sandbox-hosts.sh');
export const DOCKER = '/usr/bin/docker';

export interface HostDockerd {
  host: 'h1' | 'h2';
  paths: DockerdPaths;
  /** The daemon's pid in this (the machine's) pid namespace. */
  pid: number;
  docker(args: string[], input?: Buffer): string;
  stop(): Promise<void>;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export async function startHostDockerd(host: 'h1' | 'h2'): Promise<HostDockerd> {
  const paths = dockerdPaths(`${SANDBOX_NAME}${host}`, { run: '/run/ferry', lib: '/var/lib/ferry', socket: HOST_DOCKER_HOST.slice('unix://'.length) });
  const runDir = join(paths.execRoot, '..');
  const mk = onHost(host, ['sh', '-c', 'mkdir -p -m 0700 "$1" && echo "{}" > "$2"', 'sh', runDir, paths.configFile]);
  if (mk.status !== 0) throw new Error(`cannot prepare ${runDir} on ${host}: ${mk.stderr}`);
  mkdirSync(join(SANDBOX_DIR, host), { recursive: true });
  // Inside the host's own directory of the sandbox: removed with the sandbox.
  const logPath = join(SANDBOX_DIR, host, 'dockerd.log');
  const log = openSync(logPath, 'a');
  const env = { ...process.env, FERRY_SANDBOX_DIR: SANDBOX_DIR, FERRY_SANDBOX_NAME: SANDBOX_NAME };
  const nsenter = spawn('bash', [SCRIPT, 'exec', host, '--', ...dockerdArgv(paths)], { env, stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  nsenter.unref();
  const docker = (args: string[], input?: Buffer) => {
    const r = onHostWithInput(host, [DOCKER, ...args], input);
    if (r.status !== 0) throw new Error(`docker ${args.join(' ')} on ${host} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
  // The daemon: nsenter's child whose argv names this daemon's data root.
  let pid = 0;
  const daemon: HostDockerd = {
    host,
    paths,
    get pid() {
      return pid;
    },
    docker,
    stop: () => stopHostDockerd(host, paths, pid, docker),
  };
  try {
    pid = await waitFor(`dockerd on ${host} to start`, () => descendants(nsenter.pid!).find((p) => readText(`/proc/${p}/cmdline`).split('\0').includes(paths.dataRoot)), 20_000, 100);
    await waitFor(`dockerd on ${host} to answer`, () => onHost(host, [DOCKER, 'version'], 10_000).status === 0, 60_000, 300);
    return daemon;
  } catch (err) {
    await daemon.stop();
    throw new Error(`${(err as Error).message}\n${readText(logPath).split('\n').slice(-15).join('\n')}`);
  }
}

/** `docker import` of the test rootfs (busybox-static + the static fixtures) on that host. */
export function importTestImage(d: HostDockerd, image: string): void {
  const tar = spawnSync('tar', ['-C', buildTestRootfs(), '-c', '.'], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new Error(`tar of the test rootfs failed: ${tar.stderr}`);
  d.docker(['import', '-', image], tar.stdout);
}

function onHostWithInput(host: 'h1' | 'h2', argv: string[], input?: Buffer): { status: number | null; stdout: string; stderr: string } {
  if (!input) return onHost(host, argv);
  const env = { ...process.env, FERRY_SANDBOX_DIR: SANDBOX_DIR, FERRY_SANDBOX_NAME: SANDBOX_NAME };
  const r = spawnSync('bash', [SCRIPT, 'exec', host, '--', 'env', `DOCKER_HOST=${HOST_DOCKER_HOST}`, ...argv], { env, input, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function stopHostDockerd(host: 'h1' | 'h2', paths: DockerdPaths, pid: number, docker: HostDockerd['docker']): Promise<void> {
  try {
    const ids = docker(['ps', '-aq']).split('\n').filter(Boolean);
    if (ids.length > 0) docker(['rm', '-f', ...ids]);
  } catch {
    /* not answering: the kill below ends it */
  }
  const alive = (p: number) => existsSync(`/proc/${p}`) && !/^State:\s*Z/m.test(readText(`/proc/${p}/status`));
  if (pid > 0 && readText(`/proc/${pid}/cmdline`).split('\0').includes(paths.dataRoot)) {
    const family = descendants(pid);
    process.kill(pid, 'SIGTERM');
    await waitFor(`dockerd on ${host} to exit`, () => !alive(pid), 20_000, 100).catch(() => undefined);
    for (const p of [pid, ...family]) {
      if (alive(p)) process.kill(p, 'SIGKILL');
    }
    await waitFor(`dockerd's children on ${host} to exit`, () => [pid, ...family].every((p) => !alive(p)), 10_000, 100).catch(() => undefined);
  }
  // The daemon's files live in the host's tmpfs mounts (gone with the host); unmount and remove them now anyway, so
  // a sandbox that stays up is clean too.
  onHost(host, ['sh', '-c', 'for m in $(grep -o " $1[^ ]*\\| $2[^ ]*" /proc/self/mountinfo | sort -r); do umount -l "$m"; done; rm -rf "$1" "$2"', 'sh', paths.dataRoot, join(paths.execRoot, '..')]);
  removeCgroupParent(paths.cgroupParent);
}
