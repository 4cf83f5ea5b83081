/**
 * Real runc containers for integration tests: a busybox rootfs with the workload fixture (built once, cached), one
 * bundle per container, its own network namespace with an address, and `runc run -d` with stdio on /dev/null.
 *
 *   const c = await startRuncContainer({ memMib: 256 });
 *   ... readWorkloadState(c.stateFile) ...
 *   await c.stop();   // runc delete -f, netns deleted, bundle removed
 *
 * The workload's state directory is a host directory bind-mounted at /state (an external mount for CRIU, which runc
 * maps by itself), so the test reads the counter from the host. Also a TCP client for the container's port that runs
 * outside the container (own process, the container's network namespace only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '../host/find-executable';
import { DEFAULT_SEARCH_PATH } from '../runtime/adapter-options';
import { createNetns, deleteNetns, netnsPath, type NetnsTools, type NetnsUplink } from '../runtime/runc-netns';
import type { OciConfig } from '../runtime/runc-state';
import { buildFixture } from './fixtures';
import { waitFor, waitForCounter, workloadArgs } from './workload';

/** Bump when the rootfs layout changes, so old caches are not reused. */
const ROOTFS_LAYOUT = 2;
const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'sleep', 'ps', 'ip', 'nc', 'echo', 'mkdir', 'rm'];

export const TEST_CONTAINER_ADDRESS = '10.77.0.2/24';
export const TEST_CONTAINER_PORT = 8080;

/** The path of a tool the provisioned host has; throws naming the provisioning script when it is missing. */
export function hostTool(name: string): string {
  const path = findExecutable(name, DEFAULT_SEARCH_PATH);
  if (!path) throw new Error(`${name} not found in ${DEFAULT_SEARCH_PATH}; provision the host (scripts/provision-host.sh)`);
  return path;
}

export function netnsTools(): NetnsTools {
  return { ipPath: hostTool('ip'), nsenterPath: hostTool('nsenter') };
}

/**
 * The cached rootfs: /bin/busybox (static) with a few applet links, /usr/bin/workload, /tmp and the mountpoints runc
 * needs. Built into a temporary directory and renamed into place, so parallel workers never see half a rootfs.
 */
export function buildTestRootfs(): string {
  const busybox = hostTool('busybox');
  const workload = buildFixture('workload');
  const hash = createHash('sha256')
    .update(`layout ${ROOTFS_LAYOUT}\n`)
    .update(readFileSync(busybox))
    .update(readFileSync(workload))
    .digest('hex')
    .slice(0, 16);
  const rootfs = `/tmp/ferry-rootfs-${hash}`;
  if (existsSync(join(rootfs, 'usr', 'bin', 'workload'))) return rootfs;
  const tmp = `${rootfs}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const dir of ['bin', 'usr/bin', 'tmp', 'proc', 'dev', 'sys', 'state', 'etc']) mkdirSync(join(tmp, dir), { recursive: true });
  chmodSync(join(tmp, 'tmp'), 0o1777);
  copyFileSync(busybox, join(tmp, 'bin', 'busybox'));
  chmodSync(join(tmp, 'bin', 'busybox'), 0o755);
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', join(tmp, 'bin', applet));
  copyFileSync(workload, join(tmp, 'usr', 'bin', 'workload'));
  chmodSync(join(tmp, 'usr', 'bin', 'workload'), 0o755);
  writeFileSync(join(tmp, 'etc', 'hostname'), 'ferry-test\n');
  try {
    renameSync(tmp, rootfs);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another worker won the race
  }
  return rootfs;
}

export interface TestConfigInput {
  name: string;
  rootfs: string;
  stateDir: string;
  netnsPath: string;
  args: string[];
  terminal?: boolean;
}

/** A minimal OCI config: no terminal, root user, own pid/ipc/uts/mount namespaces, the given network namespace. */
export function testContainerConfig(input: TestConfigInput): OciConfig {
  const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID'];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: input.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args: input.args,
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.name,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/state', type: 'bind', source: input.stateDir, options: ['rbind', 'rw'] },
    ],
    linux: {
      cgroupsPath: `/ferry-test/${input.name}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network', path: input.netnsPath }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface RuncContainerOptions {
  /** Default: ferry-t-RANDOM. */
  name?: string;
  memMib?: number;
  dirtyPagesPerSec?: number;
  tickMs?: number;
  /** TCP port the workload serves; 0 for none. */
  port?: number;
  /** Address of eth0 in the container's netns, CIDR. */
  address?: string;
  /** runc's stdout goes to this host file instead of /dev/null (to test the preflight that refuses it). */
  stdoutFile?: string;
  runcRoot?: string;
  /** Plug eth0 into this bridge (the sandbox hosts' LAN) instead of leaving it alone in the namespace. */
  uplink?: NetnsUplink;
  /** A private copy of the test rootfs at this path (outside the bundle), instead of the shared cached one. */
  rootfsCopy?: string;
  /** A private copy of the test rootfs inside the bundle, named relative to it (`"root": {"path": "rootfs"}`, as `runc spec` writes it). */
  rootfsInBundle?: boolean;
  /** More host directories bind-mounted into the container (source on the host, destination inside). */
  binds?: { source: string; destination: string }[];
}

/** A test container's bundle and network namespace (runc-container.ts, slow-start.ts). */
export interface TestRuncBundle {
  name: string;
  bundle: string;
  config: OciConfig;
  netnsName: string;
  netnsPath: string;
  /** The container's IP address (without prefix length). */
  address: string;
  port: number;
  /** runc's view of the container's init pid. */
  pid(): Promise<number>;
}

export interface RuncContainer extends TestRuncBundle {
  /** Host directory bind-mounted at /state. */
  stateDir: string;
  stateFile: string;
  /** runc delete -f, the netns deleted, the bundle removed; never throws. */
  stop(): Promise<void>;
}

export async function startRuncContainer(options: RuncContainerOptions = {}): Promise<RuncContainer> {
  const name = options.name ?? `ferry-t-${Math.random().toString(36).slice(2, 8)}`;
  let rootfs = buildTestRootfs();
  if (options.rootfsCopy) {
    cpSync(rootfs, options.rootfsCopy, { recursive: true, verbatimSymlinks: true });
    rootfs = options.rootfsCopy;
  }
  const bundle = mkdtempSync(join(tmpdir(), `ferry-bundle-${name}-`));
  if (options.rootfsInBundle) cpSync(rootfs, join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  const stateDir = join(bundle, 'state');
  mkdirSync(stateDir);
  const netnsName = `ferry-ct-${name}`;
  const port = options.port ?? TEST_CONTAINER_PORT;
  const address = options.address ?? TEST_CONTAINER_ADDRESS;
  const args = [
    '/usr/bin/workload',
    ...workloadArgs({
      stateFile: '/state/state',
      memMib: options.memMib ?? 64,
      ...(port ? { port } : {}),
      ...(options.tickMs ? { tickMs: options.tickMs } : {}),
      ...(options.dirtyPagesPerSec ? { dirtyPagesPerSec: options.dirtyPagesPerSec } : {}),
    }),
  ];
  const config = testContainerConfig({ name, rootfs: options.rootfsInBundle ? 'rootfs' : rootfs, stateDir, netnsPath: netnsPath(netnsName), args });
  for (const bind of options.binds ?? []) config.mounts?.push({ destination: bind.destination, type: 'bind', source: bind.source, options: ['rbind', 'rw'] });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  const tools = netnsTools();
  const runc = hostTool('runc');
  const rootArgs = options.runcRoot ? ['--root', options.runcRoot] : [];
  const container: RuncContainer = {
    name,
    bundle,
    config,
    netnsName,
    netnsPath: netnsPath(netnsName),
    address: address.split('/')[0]!,
    port,
    stateDir,
    stateFile: join(stateDir, 'state'),
    pid: async () => {
      const { stdout } = await runCommand(runc, [...rootArgs, 'state', name]);
      return (JSON.parse(stdout) as { pid: number }).pid;
    },
    stop: async () => {
      await runCommand(runc, [...rootArgs, 'delete', '--force', name]).catch(() => undefined);
      await deleteNetns(tools, netnsName).catch(() => undefined);
      removeUnlessMounted(bundle);
    },
  };
  try {
    await createNetns(tools, netnsName, [{ ifname: 'eth0', addresses: [{ ifname: 'eth0', family: 'inet', address }] }], options.uplink);
    const stdout = options.stdoutFile ? openSync(options.stdoutFile, 'a') : 'ignore';
    try {
      // runc -d hands its stdio to the container: /dev/null (or the host file a preflight test wants).
      await runCommand(runc, [...rootArgs, '--log', join(bundle, 'runc.log'), '--log-format', 'json', 'run', '--detach', '--bundle', bundle, name], {
        stdio: ['ignore', stdout, 'ignore'],
      });
    } finally {
      if (typeof stdout === 'number') closeSync(stdout);
    }
    // The workload fills its memory before the first tick: allow for a GiB of it on a loaded machine.
    await waitForCounter(container.stateFile, 1, 15_000 + (options.memMib ?? 64) * 40);
    return container;
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(join(bundle, 'runc.log'), 'utf8');
    } catch {
      /* none */
    }
    await container.stop();
    throw new Error(`could not start runc container ${name}: ${(err as Error).message}${log ? `\nrunc log:\n${log}` : ''}`);
  }
}

/** Refuses to delete a directory that has anything mounted below it (never recurse into a rootfs bind). */
export function removeUnlessMounted(dir: string): void {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => (line.split(' ')[4] ?? '').startsWith(`${dir}/`));
  if (!mounted) rmSync(dir, { recursive: true, force: true });
}

/** Runs `file args` (argv, no shell); resolves with its output, rejects with its stderr when it exits non-zero. */
export function runCommand(
  file: string,
  args: string[],
  options: { stdio?: ('ignore' | 'pipe' | number)[] } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

export interface NetnsTcpClient {
  readonly process: ChildProcess;
  /** Everything the server sent so far. */
  output(): string;
  send(line: string): void;
  /** Waits until the output matches `pattern` (checked against all output so far). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Highest "tick N" received. */
  lastTick(): number;
  stop(): void;
}

/**
 * `busybox nc HOST PORT` inside the network namespace at `nsPath` (via nsenter --net): a TCP client that is not part
 * of the container (other PID and mount namespaces), so CRIU dumps only the server's end of the connection.
 */
export function startNetnsTcpClient(nsPath: string, host: string, port: number): NetnsTcpClient {
  const child = spawn(hostTool('nsenter'), [`--net=${nsPath}`, hostTool('busybox'), 'nc', host, String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stdin!.on('error', () => undefined);
  return {
    process: child,
    output: () => out,
    send: (line) => void child.stdin!.write(`${line}\n`),
    waitFor: (pattern, timeoutMs = 10_000) => waitFor(`${pattern} from the TCP client`, () => out.match(pattern) ?? undefined, timeoutMs),
    lastTick: () => Math.max(0, ...[...out.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]))),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
