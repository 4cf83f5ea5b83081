/**
 * Real LXC containers for integration tests, e2e tests and the benchmark: the cached busybox rootfs with the workload
 * fixture (runc-container.ts builds it) copied into LXCPATH/NAME/rootfs, a config CRIU can handle (no ttys, no
 * console, no AppArmor profile, a network namespace with loopback only), and `lxc-start`.
 *
 *   const c = await startLxcContainer({ name: 'lxcweb', lxcpath: dir, memMib: 64 });
 *   ... readWorkloadState(c.stateFile) ...
 *   await c.stop();   // lxc-stop -k, lxc-destroy
 *
 * The workload writes its state into the rootfs (/state/state), so a test reads the counter from the host and the
 * file travels with the container directory. `extraConfig` appends lines (tests of refused configurations).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LxcAdapter } from '../runtime/lxc-adapter';
import { buildTestRootfs } from './runc-container';
import { waitForCounter, workloadArgs } from './workload';

const run = promisify(execFile);

export interface LxcContainerOptions {
  name: string;
  lxcpath: string;
  memMib?: number;
  dirtyPagesPerSec?: number;
  /** TCP port the workload listens on inside the container (loopback only: the container's netns has no uplink). */
  port?: number;
  extraConfig?: readonly string[];
  /**
   * A veth on this bridge (the sandbox hosts' lxcbr0, plugged into their LAN) with this address (CIDR) and a MAC
   * derived from it, instead of a namespace with loopback only.
   */
  network?: { link: string; address: string };
  /** The workload's stdin is the container's console (a process holding a terminal, which ferry refuses). */
  consoleStdin?: boolean;
  /** Do not wait for the workload's first tick (a container that is expected not to start properly). */
  noWait?: boolean;
}

export interface LxcTestContainer {
  name: string;
  lxcpath: string;
  dir: string;
  stateFile: string;
  pid(): Promise<number>;
  stop(): Promise<void>;
}

/** Writes LXCPATH/NAME (config and rootfs) without starting it. */
export function createLxcContainerDir(options: LxcContainerOptions): { dir: string; stateFile: string } {
  const dir = join(options.lxcpath, options.name);
  if (existsSync(dir)) throw new Error(`${dir} exists already`);
  mkdirSync(options.lxcpath, { recursive: true, mode: 0o755 });
  mkdirSync(dir, { mode: 0o770 });
  const rootfs = join(dir, 'rootfs');
  cpSync(buildTestRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(rootfs, 'state'), { recursive: true });
  if (options.consoleStdin) {
    writeFileSync(join(rootfs, 'usr', 'bin', 'with-console'), '#!/bin/sh\nexec /usr/bin/workload "$@" </dev/console\n', { mode: 0o755 });
  }
  const args = workloadArgs({
    stateFile: '/state/state',
    memMib: options.memMib ?? 64,
    ...(options.dirtyPagesPerSec ? { dirtyPagesPerSec: options.dirtyPagesPerSec } : {}),
    ...(options.port ? { port: options.port } : {}),
  });
  const config = [
    `lxc.uts.name = ${options.name}`,
    `lxc.rootfs.path = dir:${rootfs}`,
    // Without a bridge to plug into (no lxcbr0 on plain test hosts): a network namespace with loopback only.
    ...(options.network
      ? [
          'lxc.net.0.type = veth',
          `lxc.net.0.link = ${options.network.link}`,
          'lxc.net.0.name = eth0',
          'lxc.net.0.flags = up',
          `lxc.net.0.hwaddr = ${macFor(options.network.address)}`,
          `lxc.net.0.ipv4.address = ${options.network.address}`,
        ]
      : ['lxc.net.0.type = empty']),
    // What CRIU can restore (docs/lxc.md): no ttys, no console, no ptys.
    'lxc.tty.max = 0',
    'lxc.pty.max = 0',
    // With consoleStdin, LXC's own pty console (lxc.console.path unset), which the workload then holds.
    ...(options.consoleStdin ? [] : ['lxc.console.path = none']),
    'lxc.mount.auto = proc:mixed sys:mixed',
    'lxc.autodev = 1',
    `lxc.init.cmd = /usr/bin/${options.consoleStdin ? 'with-console' : 'workload'} ${args.join(' ')}`,
    ...(options.extraConfig ?? []),
  ];
  writeFileSync(join(dir, 'config'), `${config.join('\n')}\n`);
  return { dir, stateFile: join(rootfs, 'state', 'state') };
}

/** A locally administered MAC from an IPv4 address: the same on every host the container moves to. */
function macFor(cidr: string): string {
  const octets = cidr.split('/')[0]!.split('.').map((o) => Number(o).toString(16).padStart(2, '0'));
  return ['02', 'fe', ...octets].join(':');
}

export async function startLxcContainer(options: LxcContainerOptions): Promise<LxcTestContainer> {
  const { dir, stateFile } = createLxcContainerDir(options);
  const { lxcpath, name } = options;
  const stop = async () => {
    // Through the adapter: a frozen container is thawed first (a frozen task cannot die; lxc-unfreeze does not thaw
    // the v1 freezer on hybrid hosts).
    await new LxcAdapter({ lxcPaths: [lxcpath] }).remove(name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('lxc-start', ['-P', lxcpath, '-n', name, '-o', join(lxcpath, `${name}.start.log`), '-l', 'ERROR']);
    if (!options.noWait) await waitForCounter(stateFile, 1, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name,
    lxcpath,
    dir,
    stateFile,
    pid: async () => {
      const { stdout } = await run('lxc-info', ['-P', lxcpath, '-n', name, '-p', '-H']);
      return Number(stdout.trim());
    },
    stop,
  };
}
