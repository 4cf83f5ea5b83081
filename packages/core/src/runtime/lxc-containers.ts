/**
 * Reading LXC containers: where they are (the first lxcpath holding NAME/config wins), their state through
 * `lxc-info`, and the ContainerInfo built from it, the config, the freezer and the network namespace. The freezer is
 * the truth about frozen or running: liblxc's view of a container it restored frozen lags behind.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Freezer } from '../freezer/freezer';
import type { ContainerInfo, ContainerState } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { freezerPathOfPid, nameRule } from './adapter-common';
import type { LxcCli, LxcOutcome } from './lxc-cli';
import { readLxcConfig, rootfsPathOf } from './lxc-config';
import { LINK_NAME } from './network-fence';
import { ipIn, readNetnsInterfaces, type NetnsTools } from './runc-netns';
import { toolFailure } from './tool-failure';

/** LXC names: no '/', and ferry refuses a leading '-' or '.' so a name never reads as a flag or a dot dir. */
export const lxcNames = nameRule('lxc', 'LXC', /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/, 'LXC names use letters, digits and _ + - . and do not start with - . or +.');
export const LXC_TOOL_HINT = 'Check the container with `lxc-ls -f` (and `lxc-info -n NAME`); `ferry doctor` checks the host.';
/** A process holding one of these is attached to a terminal CRIU cannot recreate. */
const TERMINAL = /^\/dev\/(console|ptmx|tty\d*|pts\/\d+)$/;

export interface Located {
  lxcpath: string;
  name: string;
  /** LXCPATH/NAME */
  dir: string;
}

export class LxcContainers {
  constructor(
    private readonly cli: LxcCli,
    private readonly tools: NetnsTools,
    private readonly lxcPaths: readonly string[],
    private readonly commandTimeoutMs: number,
  ) {}

  /** The container's place; ERR_RUNTIME_NOT_FOUND when no lxcpath holds it. */
  locate(id: string): Located {
    lxcNames.name(id);
    for (const lxcpath of this.lxcPaths) {
      if (existsSync(join(lxcpath, id, 'config'))) return { lxcpath, name: id, dir: join(lxcpath, id) };
    }
    throw new FerryError('ERR_RUNTIME_NOT_FOUND', `LXC has no container named ${id} (looked in ${this.lxcPaths.join(', ')})`, {
      hint: 'Run `ferry ps` to see the containers ferry can find; containers in another lxcpath need `-P PATH` (FERRY_LXC_PATH).',
      details: { id, lxcPaths: this.lxcPaths },
    });
  }

  /** The container's place, or undefined when no lxcpath holds it. */
  find(id: string): Located | undefined {
    try {
      return this.locate(id);
    } catch (err) {
      if (isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) return undefined;
      throw err;
    }
  }

  /** Stops a running container (`lxc-stop -k`, thawed first: a frozen task cannot die); it stays defined. */
  async stop(where: Located): Promise<void> {
    const info = await this.describe(where).catch(() => undefined);
    if (!info || info.state === 'stopped') return;
    if (info.freezerPath) thawQuietly(info.freezerPath);
    await this.lxc('lxc-stop', ['-P', where.lxcpath, '-n', where.name, '-k'], `stop ${where.name}`);
  }

  async list(): Promise<ContainerInfo[]> {
    const found: Located[] = [];
    const seen = new Set<string>();
    for (const lxcpath of this.lxcPaths) {
      let entries: string[];
      try {
        entries = readdirSync(lxcpath);
      } catch {
        continue; // an lxcpath that does not exist holds no containers
      }
      for (const name of entries.sort()) {
        if (seen.has(name) || !isName(name) || !existsSync(join(lxcpath, name, 'config'))) continue;
        seen.add(name);
        found.push({ lxcpath, name, dir: join(lxcpath, name) });
      }
    }
    return Promise.all(found.map((c) => this.describe(c)));
  }

  /** `lxc-info -s -p`: liblxc's state word and the init's pid. */
  async lxcInfo(where: Located): Promise<{ state: string; pid?: number }> {
    const outcome = await this.lxc('lxc-info', ['-P', where.lxcpath, '-n', where.name, '-s', '-p'], `lxc-info of ${where.name}`);
    const state = /^State:\s*(\S+)/m.exec(outcome.stdout)?.[1] ?? 'UNKNOWN';
    const pid = Number(/^PID:\s*(\d+)/m.exec(outcome.stdout)?.[1] ?? NaN);
    return Number.isInteger(pid) && pid > 0 ? { state, pid } : { state };
  }

  /** ContainerInfo from lxc-info, the config and /proc; `thaw` thaws a frozen cgroup first (after a restore). */
  async describe(where: Located, read: { thaw?: boolean } = {}): Promise<ContainerInfo> {
    const info = await this.lxcInfo(where);
    const container: ContainerInfo = { ref: { runtime: 'lxc', id: where.name }, state: stateOf(info.state), bundle: where.dir };
    try {
      const rootfs = rootfsPathOf(readLxcConfig(join(where.dir, 'config')));
      if (rootfs) container.rootfs = rootfs;
    } catch {
      /* unreadable config: no rootfs */
    }
    if (info.pid === undefined || container.state === 'stopped') return container;
    container.pid = info.pid;
    const freezerPath = freezerPathOfPid(info.pid);
    if (freezerPath) {
      container.freezerPath = freezerPath;
      try {
        const freezer = Freezer.at(freezerPath);
        if (read.thaw && freezer.state() !== 'thawed') freezer.thaw();
        container.state = freezer.state() === 'thawed' ? 'running' : 'paused';
      } catch {
        /* exited meanwhile */
      }
    }
    const interfaces = await readNetnsInterfaces(this.tools, `/proc/${info.pid}/ns/net`).catch(() => undefined);
    if (interfaces) container.netns = { addresses: interfaces.flatMap((i) => i.addresses) };
    return container;
  }

  /** Brings the named links of a running container up (the ones a move fenced, after its restore). */
  async raiseLinks(where: Located, ifnames: readonly string[]): Promise<void> {
    const { pid } = await this.lxcInfo(where);
    for (const ifname of ifnames) await ipIn(this.tools, `/proc/${pid}/ns/net`, ['link', 'set', 'dev', ifname, 'up']);
  }

  /** The host-side ends of the container's veth links (lxc-info's "Link:" lines). */
  async hostLinks(where: Located): Promise<string[]> {
    const outcome = await this.lxc('lxc-info', ['-P', where.lxcpath, '-n', where.name], `lxc-info of ${where.name}`);
    return [...outcome.stdout.matchAll(/^Link:\s*(\S+)/gm)].map((m) => m[1]!).filter((l) => LINK_NAME.test(l));
  }

  /** The first container task that holds a terminal, from the freezer cgroup's task list. */
  terminalHolder(container: ContainerInfo): { pid: number; fd: string; target: string } | undefined {
    const pids = new Set<number>();
    if (container.pid !== undefined) pids.add(container.pid);
    for (const file of container.freezerPath ? ['cgroup.procs', 'tasks'] : []) {
      try {
        for (const p of readFileSync(join(container.freezerPath!, file), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
      } catch {
        /* not this file on this cgroup version */
      }
    }
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
          if (TERMINAL.test(target)) return { pid, fd, target };
        } catch {
          /* closed meanwhile */
        }
      }
    }
    return undefined;
  }

  /** A quick lxc-* command; ERR_RUNTIME_FAILED with liblxc's message when it fails. */
  async lxc(tool: string, args: string[], what: string): Promise<LxcOutcome> {
    const outcome = await this.cli.run(tool, args, { timeoutMs: this.commandTimeoutMs });
    if (!outcome.ok) throw toolFailure('LXC', what, outcome, LXC_TOOL_HINT);
    return outcome;
  }
}

/** Thaws the freezer cgroup at `freezerPath`; one that is gone is passed over. */
export function thawQuietly(freezerPath: string): void {
  try {
    Freezer.at(freezerPath).thaw();
  } catch {
    /* gone */
  }
}

function isName(name: string): boolean {
  try {
    lxcNames.name(name);
    return true;
  } catch {
    return false;
  }
}

function stateOf(lxcState: string): ContainerState {
  switch (lxcState) {
    case 'RUNNING':
    case 'STARTING':
      return 'running';
    case 'FROZEN':
    case 'FREEZING':
      return 'paused';
    case 'STOPPED':
    case 'STOPPING':
    case 'ABORTING':
      return 'stopped';
    default:
      return 'unknown';
  }
}
