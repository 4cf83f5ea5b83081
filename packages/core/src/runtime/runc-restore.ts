/**
 * What a runc restore needs besides `runc restore` itself, and its undo:
 * - the network namespace: runc joins it by path and hands it to CRIU as external, so it must exist first. It is
 *   re-created with the recorded interfaces when its path does not exist on this host, or when the original
 *   container still holds it (its sockets hold the addresses: CRIU fails with EADDRINUSE);
 * - the bundle: the original one when nothing changes, else a rewritten config.json in the state dir;
 * - owned.json (STATE_DIR/NAME): everything made for a restored container, noted before it is made, so remove() and
 *   a failed restore can undo it;
 * - the clean-up after a restore killed at its deadline (mounts and cgroups runc leaves then).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { unescapeMountPath } from '../host/mountinfo';
import { FerryError } from '../model/ferry-error';
import { hostCgroups, type Reverter } from './adapter-common';
import { assertNetnsFree, createNetns, deleteNetns, ipIn, raiseUplink, readdressed, type NetnsInterface, type NetnsTools, type NetnsUplink } from './runc-netns';
import { adoptPreparedNetns, joinPreparedNetns, releaseOwned } from './runc-prepared-network';
import { networkNamespaceOf, relocatePaths, rewriteConfigForRestore, type OciConfig } from './runc-state';
import type { RestorePlan } from './restore-pipeline';
import { DEFAULT_RUNC_ROOT, type RuncContainers } from './runc-containers';
import { readFileNoFollow } from '../host/safe-files';
import type { PacketHoldRecord } from '../network';
import type { RuncTrafficHolds } from './runc-traffic-hold';

const run = promisify(execFile);
/** How long killed tasks get to leave their cgroups before the (then empty) directories are removed. */
const CGROUP_DRAIN_MS = 200;

/** What the adapter created for one restored container. */
export interface OwnedResources {
  netns?: string;
  bundleCopy?: string;
  /** Uplink ends a restore with holdNetwork left down, until releaseNetwork(). */
  heldUplink?: string[];
  /** The packet hold a restore with holdNetwork put on the namespace instead, until releaseNetwork(). */
  heldTraffic?: PacketHoldRecord;
  /** Made before the freeze (prepareNetwork) with these interfaces, for the restore to join; gone once it did. */
  prepared?: { interfaces: NetnsInterface[] };
}

/** owned.json files under the adapter's state dir. */
export class OwnedStore {
  constructor(
    private readonly stateDir: string,
    private readonly tools: NetnsTools,
  ) {}

  read(name: string): OwnedResources | undefined {
    try {
      return JSON.parse(readFileSync(this.file(name), 'utf8')) as OwnedResources;
    } catch {
      return undefined;
    }
  }

  write(name: string, owned: OwnedResources): void {
    mkdirSync(join(this.stateDir, name), { recursive: true, mode: 0o700 });
    writeFileSync(this.file(name), JSON.stringify(owned), { mode: 0o600 });
  }

  /** Deletes the netns and config.json copy made for `name` (from owned.json, or the given record). */
  async release(name: string, known?: OwnedResources): Promise<void> {
    let owned = known;
    if (!owned) {
      try {
        owned = JSON.parse(readFileSync(this.file(name), 'utf8')) as OwnedResources;
      } catch {
        return;
      }
    }
    if (owned.netns) await deleteNetns(this.tools, owned.netns);
    if (owned.bundleCopy) {
      rmIfExists(join(owned.bundleCopy, 'config.json'));
      tryRmdir(owned.bundleCopy);
    }
    rmIfExists(this.file(name));
    tryRmdir(join(this.stateDir, name));
  }

  bundleDir(name: string): string {
    return join(this.stateDir, name, 'bundle');
  }

  private file(name: string): string {
    return join(this.stateDir, name, 'owned.json');
  }
}

export interface RuncRestorePrep {
  bundle: string;
  /** The config.json runc restores with (rewritten when the name or the netns changed). */
  config: OciConfig;
  /** Network steps that must wait until the restored sockets exist (createNetns' held uplink). */
  afterRestore: (() => Promise<void>)[];
}

export interface RuncRestoreDeps {
  tools: NetnsTools;
  store: OwnedStore;
  containers: RuncContainers;
  netnsPrefix: string;
  uplink: NetnsUplink | undefined;
  /** runc's state root (`--root`), or undefined for runc's default. */
  runcRoot: string | undefined;
  /** Packet holds for restore({ holdNetwork }); without them the bridge ends stay down until the release. */
  holds?: RuncTrafficHolds;
  umountPath: string;
}

/** Settles the network namespace and the bundle; every side effect noted in owned.json first and undone on failure. */
export async function prepareRuncRestore(plan: RestorePlan<'runc'>, deps: RuncRestoreDeps, revert: Reverter): Promise<RuncRestorePrep> {
  const { name, record, options } = plan;
  const sourceBundle = resolve(options.bundle ?? record?.bundle ?? '.');
  // The bundle may have come from another host: its config.json is never followed through a symlink (runc would
  // read whatever it points at), and a symlinked one is refused.
  const bundleConfig = parseConfig(readFileNoFollow(join(sourceBundle, 'config.json')));
  const config = bundleConfig ?? record?.config;
  if (!config) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no config.json in ${sourceBundle} and none recorded in ${plan.imagesDir}`, {
      hint: 'Pass the bundle to restore into.',
    });
  }
  const ns = networkNamespaceOf(config);
  const nsMissing = ns?.path !== undefined && !existsSync(ns.path);
  const interfaces = readdressed(record?.netns?.interfaces ?? [], options.readdress);
  // The name is free in runc: whatever an earlier container of that name left behind is stale, except a namespace
  // made for this restore before the freeze (prepareNetwork) with the interfaces it needs.
  const owned: OwnedResources = (ns?.path !== undefined && adoptPreparedNetns(name, ns.path, interfaces, deps)) || {};
  if (!owned.prepared) await releaseOwned(deps, name);
  // The container runc may have made, then what the adapter made (owned.json).
  revert.add(async () => {
    if (await deps.containers.exists(name).catch(() => false)) await deps.containers.runc(['delete', '--force', name], `delete ${name}`).catch(() => undefined);
    await deps.store.release(name, owned);
  });
  const afterRestore: (() => Promise<void>)[] = [];

  let newNetnsPath: string | undefined;
  const nsHeldByOriginal = ns?.path !== undefined && !nsMissing && record !== undefined && record.id !== name && (await deps.containers.usesNetns(record.id, ns.path));
  if (owned.prepared) {
    newNetnsPath = await joinPreparedNetns(name, owned, deps, afterRestore, options.holdNetwork === true, revert);
  } else if (ns?.path !== undefined && (nsMissing || nsHeldByOriginal)) {
    const nsName = `${deps.netnsPrefix}${name}`;
    assertNetnsFree(nsName);
    owned.netns = nsName;
    deps.store.write(name, owned);
    const uplink = deps.uplink;
    newNetnsPath = await createNetns(deps.tools, nsName, interfaces, uplink, (peers) => {
      if (!options.holdNetwork) return void afterRestore.push(() => raiseUplink(deps.tools, uplink!, peers));
      // Held until releaseNetwork(), perhaps by another process: noted where that one finds it.
      owned.heldUplink = peers;
      deps.store.write(name, owned);
    });
    const held = owned.heldUplink;
    if (held && deps.holds) await deps.holds.holdThenRaise(name, newNetnsPath, owned, () => raiseUplink(deps.tools, uplink!, held), revert);
  } else if (ns?.path !== undefined) {
    // The namespace is still here (the container comes back to a host it left): a migration fenced its links when it
    // moved away. They must be up before the restore: CRIU reconnects the TCP sockets through them.
    for (const iface of record?.netns?.interfaces ?? []) await ipIn(deps.tools, ns.path, ['link', 'set', 'dev', iface.ifname, 'up']);
  }

  const rewritten = rewriteConfigForRestore(config, {
    bundle: sourceBundle,
    ...(newNetnsPath === undefined ? {} : { netnsPath: newNetnsPath }),
    oldName: record?.id ?? name,
    newName: name,
  });
  if (options.relocate) relocatePaths(rewritten, options.relocate);
  let bundle = sourceBundle;
  const pathsOf = (c: OciConfig) => JSON.stringify([c.root, c.mounts]);
  if (bundleConfig === undefined || JSON.stringify(rewritten.linux) !== JSON.stringify(config.linux) || pathsOf(rewritten) !== pathsOf(config)) {
    bundle = deps.store.bundleDir(name);
    owned.bundleCopy = bundle;
    deps.store.write(name, owned);
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(rewritten, null, 2), { mode: 0o600 });
  }
  return { bundle, config: rewritten, afterRestore };
}

/**
 * After `runc restore` was killed at its deadline. runc cleans up after a CRIU failure by itself, but a killed CRIU
 * leaves its cgroup yard mounted in the work dir, and runc may leave the cgroups and its state dir: unmount, kill
 * what is left in the container's cgroups, and remove the (then empty) directories. Never a recursive delete: runc's
 * state dir holds the rootfs bind mount (criu-root) while a restore runs. A container runc still knows is deleted by
 * the undo step prepareRuncRestore registered.
 */
export async function cleanupKilledRestore(plan: RestorePlan<'runc'>, prep: RuncRestorePrep, deps: RuncRestoreDeps): Promise<void> {
  const runcDir = join(deps.runcRoot ?? DEFAULT_RUNC_ROOT, plan.name);
  await cleanupMountsAndCgroups(runcDir, plan.workDir, prep.config, deps.umountPath);
  // No state file: runc does not know the container (what RuncContainers.exists reads).
  if (existsSync(runcDir) && !existsSync(join(runcDir, 'state.json'))) {
    tryRmdir(join(runcDir, 'criu-root'));
    tryRmdir(runcDir);
  }
}

async function cleanupMountsAndCgroups(runcDir: string, workDir: string, config: OciConfig, umountPath: string): Promise<void> {
  const criuRoot = join(runcDir, 'criu-root');
  const yardPrefix = `${workDir}/.criu.cgyard.`;
  const mountpoints = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
    .filter((mp) => mp.startsWith(yardPrefix) || mp === criuRoot || mp.startsWith(`${criuRoot}/`))
    .sort((a, b) => b.length - a.length);
  for (const mp of mountpoints) {
    await run(umountPath, [mp]).catch(() => run(umountPath, ['-l', mp]).catch(() => undefined));
  }
  // The yard directories themselves (WORK/.criu.cgyard.XXXXXX), empty once unmounted.
  const yardOf = (mp: string) => {
    const cut = mp.indexOf('/', yardPrefix.length);
    return cut < 0 ? mp : mp.slice(0, cut);
  };
  for (const yard of new Set(mountpoints.filter((mp) => mp.startsWith(yardPrefix)).map(yardOf))) tryRmdir(yard);
  const cgroupsPath = config.linux?.cgroupsPath;
  if (cgroupsPath?.startsWith('/')) {
    const layout = hostCgroups();
    const roots = new Set([...Object.values(layout.v1Controllers), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])]);
    for (const root of roots) killCgroupProcs(join(root, cgroupsPath));
    await new Promise((r) => setTimeout(r, CGROUP_DRAIN_MS));
    for (const root of roots) tryRmdir(join(root, cgroupsPath));
  }
}

function killCgroupProcs(dir: string): void {
  for (const file of ['cgroup.procs', 'tasks']) {
    let text: string;
    try {
      text = readFileSync(join(dir, file), 'utf8');
    } catch {
      continue;
    }
    for (const pid of text.split('\n').filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    /* not empty, busy or gone */
  }
}

function rmIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}

function parseConfig(text: string | undefined): OciConfig | undefined {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as OciConfig);
  } catch {
    return undefined;
  }
}
