/**
 * The plan of one move, decided before anything is frozen: which strategy and why, what to copy, and every refusal
 * that can be known up front (ERR_PRECHECK_*, ERR_RUNTIME_NOT_RUNNING). Pure: request + both hosts' summaries + the
 * runtime's features + facts about the container in, a plan or an error out. The strategy rule is core's
 * strategyBlocker, the same one `ferry doctor` applies.
 */
import { isAbsolute, relative } from 'node:path';
import {
  FerryError,
  LAZY_PAGES_MIN_PIPE_BYTES,
  strategyBlocker,
  type ContainerState,
  type RuntimeName,
  type RuntimeStrategyFeatures,
  type StrategyInputs,
  type StrategyName,
} from '@ferry/core';
import type { HostSummary } from '../protocol/agent-messages';

export type { StrategyName } from '@ferry/core';
export type RequestedStrategy = StrategyName | 'auto';

/** Auto's order of preference: shortest freeze without risking the single copy first. */
export const STRATEGY_PREFERENCE: readonly StrategyName[] = ['pre-copy', 'hash-pre-copy', 'post-copy', 'stop-and-copy'];

const AUTO_REASONS: Record<StrategyName, string> = {
  'pre-copy': 'the source tracks memory: CRIU pre-dumps while it runs keep the final freeze short',
  'hash-pre-copy': 'memory is copied in rounds while the container runs (hashing pages, no kernel tracking needed), so the freeze sends only what changed',
  'post-copy': 'both hosts support lazy pages: the destination runs at once and pulls memory on demand',
  'stop-and-copy': 'the one strategy every host supports',
};

export interface PlanRequest {
  strategy: RequestedStrategy;
  sharedStorage: boolean;
  streamPages?: boolean;
  /**
   * Hash-pre-copy: restore without writing the memory while frozen, filling it from the destination's chain after.
   * true (--lazy-restore): required; false (--no-lazy-restore): eager; absent: `auto` decides (lazily where it can).
   */
  lazyRestore?: boolean;
  clone?: { name: string; readdress?: Record<string, string> };
}

export interface ContainerFacts {
  name: string;
  state: ContainerState;
  pid?: number;
  bundle?: string;
  rootfs?: string;
  /** Host paths the container bind-mounts (and whether each is a directory): the restore needs each one there. */
  bindMounts?: readonly { path: string; directory: boolean }[];
  /** Clones: what ties the container to its network identity. */
  ties?: { addresses: readonly string[]; establishedTcp: number };
}

export interface PlanInputs {
  request: PlanRequest;
  source: HostSummary;
  destination: HostSummary;
  destinationName: string;
  runtime: { name: RuntimeName; features?: RuntimeStrategyFeatures & { relocatablePaths?: boolean }; needsImage: boolean };
  container: ContainerFacts;
}

export interface MigrationPlan {
  strategy: StrategyName;
  reason: string;
  /** The container's name on the destination (a clone's own name). */
  targetName: string;
  clone: boolean;
  /** Runtimes that make containers from an image (Docker): the destination gets it first if it lacks it. */
  copyImage: boolean;
  copyBundle: boolean;
  /**
   * A rootfs and bind-mounted directories outside the bundle, copied with it as parts (`rootfs`, `mount/N`), for
   * runtimes that restore onto relocated paths.
   */
  copyTrees: { part: string; path: string }[];
  /** Stop-and-copy: memory streams to a page server on the destination while the dump runs. */
  streamPages: boolean;
  /** Hash-pre-copy: the destination restores lazily from the pages it holds (strategies/hash-pre-copy.ts). */
  lazyRestore: boolean;
}

const precheck = (code: 'ERR_PRECHECK_SAME_HOST' | 'ERR_PRECHECK_INCOMPATIBLE' | 'ERR_PRECHECK_CLONE_CONFLICT' | 'ERR_PRECHECK_STORAGE_NOT_COPIED', message: string, hint: string) =>
  new FerryError(code, message, { hint });

/** The checks that need only this host: run before connecting, so a bad request fails fast. */
export function checkContainer(request: PlanRequest, runtime: Pick<PlanInputs['runtime'], 'name' | 'features'>, container: ContainerFacts): void {
  if (container.state !== 'running') {
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `container ${container.name} is ${container.state}, not running`, {
      hint: 'Start it first, or use `ferry checkpoint` / `ferry restore` for stopped containers.',
    });
  }
  if (request.clone && request.strategy !== 'auto' && request.strategy !== 'stop-and-copy') {
    throw precheck('ERR_PRECHECK_CLONE_CONFLICT', `a clone cannot use ${request.strategy}: it would end or stop the original`, 'Clone with --strategy auto or stop-and-copy.');
  }
  if (!request.sharedStorage) checkStorage(runtime, container);
  if (request.clone) checkCloneTies(container, request.clone);
}

/**
 * A restore needs the container's files where its configuration says. ferry copies the bundle; a rootfs or a bind
 * mount source elsewhere on this host would be missing on the destination, and the restore would fail only after
 * the freeze (measured: runc's `invalid rootfs: stat ...: no such file or directory`).
 */
function checkStorage(rt: Pick<PlanInputs['runtime'], 'name' | 'features'>, container: ContainerFacts): void {
  const runtime = rt.name;
  const bundle = container.bundle;
  if (!bundle) return; // runtimes without a bundle (Docker) carry their filesystem themselves
  const relocatable = rt.features?.relocatablePaths === true;
  const rootfs = rootfsToCopy(container);
  if (rootfs && !relocatable) {
    throw precheck(
      'ERR_PRECHECK_STORAGE_NOT_COPIED',
      `the root filesystem of ${runtime} container ${container.name} (${rootfs}) lies outside its bundle (${bundle}), and ${runtime} cannot restore onto a copy of it`,
      `Move the rootfs into the bundle, or pass --shared-storage if ${rootfs} is on storage the destination sees at the same path.`,
    );
  }
  const outside = bindsOutside(container);
  const refused = outside.filter((b) => !b.directory || !relocatable).map((b) => b.path);
  if (refused.length > 0) {
    const why = relocatable ? 'files, not directories: ferry copies bind-mounted directories only' : `${runtime} cannot restore onto copies of them`;
    throw precheck(
      'ERR_PRECHECK_STORAGE_NOT_COPIED',
      `${runtime} container ${container.name} bind-mounts ${refused.join(', ')} from this host, outside its bundle (${why})`,
      `Pass --shared-storage if ${refused.length > 1 ? 'they are' : 'it is'} on storage the destination sees at the same path, or move ${refused.length > 1 ? 'them' : 'it'} into the bundle.`,
    );
  }
}

function isOutside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel.startsWith('..') || isAbsolute(rel);
}

/** The rootfs when it lies outside the bundle (it must then be copied on its own, or be on shared storage). */
function rootfsToCopy(container: ContainerFacts): string | undefined {
  return container.bundle && container.rootfs && isOutside(container.bundle, container.rootfs) ? container.rootfs : undefined;
}

/** Bind sources outside the bundle (and the rootfs), other than the kernel's own filesystems. */
function bindsOutside(container: ContainerFacts): { path: string; directory: boolean }[] {
  const bundle = container.bundle;
  if (!bundle) return [];
  const rootfs = rootfsToCopy(container);
  return (container.bindMounts ?? []).filter(
    (b) => isOutside(bundle, b.path) && !(rootfs && !isOutside(rootfs, b.path)) && !SYSTEM_PATHS.some((p) => b.path === p || b.path.startsWith(`${p}/`)),
  );
}

/** What to copy besides the bundle: the rootfs as `rootfs`, each outside bind-mounted directory as `mount/N`. */
function treesToCopy(container: ContainerFacts): { part: string; path: string }[] {
  const rootfs = rootfsToCopy(container);
  return [...(rootfs ? [{ part: 'rootfs', path: rootfs }] : []), ...bindsOutside(container).map((b, i) => ({ part: `mount/${i}`, path: b.path }))];
}

/** Bind sources every host has (device nodes, kernel filesystems): never a reason to refuse. */
const SYSTEM_PATHS = ['/dev', '/proc', '/sys'];

/** Whether the destination can take a container of this runtime from this host at all (also replication's check). */
export function checkHostPair(local: HostSummary, remote: HostSummary, runtime: { name: RuntimeName }, destination: string): void {
  if (local.hostId === remote.hostId) {
    throw precheck('ERR_PRECHECK_SAME_HOST', `${destination} is this host (${remote.hostname})`, 'Name another host after --to.');
  }
  if (!remote.criu.versionOk || !remote.criu.checkOk) {
    throw precheck('ERR_PRECHECK_INCOMPATIBLE', `CRIU on ${destination} is not usable (${remote.criu.version ?? 'missing'})`, `Run scripts/provision-host.sh and \`ferry doctor\` on ${destination}.`);
  }
  if (local.arch !== remote.arch || local.pageSizeBytes !== remote.pageSizeBytes) {
    throw precheck(
      'ERR_PRECHECK_INCOMPATIBLE',
      `${destination} is ${remote.arch} with ${remote.pageSizeBytes}-byte pages, this host ${local.arch} with ${local.pageSizeBytes}`,
      'Migrate between hosts of the same architecture and page size.',
    );
  }
  const rt = remote.runtimes.find((r) => r.name === runtime.name);
  if (!rt?.usable) {
    throw precheck('ERR_PRECHECK_INCOMPATIBLE', `${runtime.name} is not usable on ${destination}${rt?.reason ? `: ${rt.reason}` : ''}`, `Install ${runtime.name} on ${destination}.`);
  }
}

function checkCloneTies(container: ContainerFacts, clone: NonNullable<PlanRequest['clone']>): void {
  const ties = container.ties ?? { addresses: [], establishedTcp: 0 };
  if (ties.establishedTcp > 0) {
    throw precheck(
      'ERR_PRECHECK_CLONE_CONFLICT',
      `${container.name} holds ${ties.establishedTcp} established TCP connection(s): a clone would answer on them too`,
      'Clone while it has no open connections (or migrate it instead).',
    );
  }
  if (ties.addresses.length > 0 && Object.keys(clone.readdress ?? {}).length === 0) {
    throw precheck(
      'ERR_PRECHECK_CLONE_CONFLICT',
      `${container.name} has addresses (${ties.addresses.join(', ')}) that the clone would take too`,
      'Give the clone its own address with --address IFNAME=CIDR (e.g. --address eth0=10.0.0.9/24).',
    );
  }
}

/** What core's strategy rule reads from a hello's host summary. */
export function strategyFacts(host: HostSummary): StrategyInputs {
  return {
    criuUsable: host.criu.versionOk && host.criu.checkOk,
    memTrack: host.criu.memTrack,
    lazyPages: host.criu.lazyPages,
    pipeMaxSizeBytes: host.pipeMaxSizeBytes,
    memoryRead: host.memoryRead === true,
  };
}

function chooseStrategy(inputs: PlanInputs): { strategy: StrategyName; reason: string } {
  // A clone leaves the source running: only a dump that leaves it running fits (post-copy ends the source).
  const requested = inputs.request.clone ? 'stop-and-copy' : inputs.request.strategy;
  const pair = { source: strategyFacts(inputs.source), destination: strategyFacts(inputs.destination), runtime: inputs.runtime };
  if (requested !== 'auto') {
    const why = strategyBlocker(requested, pair);
    if (why) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', why, {
        hint: 'Run `ferry doctor` on both hosts, or use --strategy auto to let ferry pick one that works.',
      });
    }
    return { strategy: requested, reason: inputs.request.clone ? 'a clone is a stop-and-copy: the original runs on' : 'requested with --strategy' };
  }
  const skipped: string[] = [];
  for (const name of STRATEGY_PREFERENCE) {
    const why = strategyBlocker(name, pair);
    if (!why) return { strategy: name, reason: [AUTO_REASONS[name], ...skipped].join('; ') };
    skipped.push(why);
  }
  throw new FerryError('ERR_PRECHECK_INCOMPATIBLE', `no strategy can move ${inputs.container.name} to ${inputs.destinationName}: ${skipped.join('; ')}`, {
    hint: 'Run `ferry doctor` on both hosts.',
  });
}

export function planMigration(inputs: PlanInputs): MigrationPlan {
  const { request, container } = inputs;
  checkContainer(request, inputs.runtime, container);
  checkHostPair(inputs.source, inputs.destination, inputs.runtime, inputs.destinationName);
  const { strategy, reason } = chooseStrategy(inputs);
  if (strategy === 'hash-pre-copy' && !container.pid) {
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `${inputs.runtime.name} reports no pid for ${container.name}`, { hint: 'Check that the container runs.' });
  }
  const lazyRestore = request.lazyRestore === true ? checkLazyRestore(strategy, inputs) : request.lazyRestore === undefined && autoLazyRestore(strategy, inputs);
  const lazyReason =
    request.lazyRestore === true
      ? '; restored lazily from the pages the destination holds (--lazy-restore)'
      : '; restored lazily: the destination holds every page before the freeze ends, so the frozen restore writes no memory and the copy fills from them after (--no-lazy-restore restores eagerly)';
  return {
    strategy,
    reason: lazyRestore ? `${reason}${lazyReason}` : reason,
    targetName: request.clone?.name ?? container.name,
    clone: request.clone !== undefined,
    copyImage: inputs.runtime.needsImage,
    copyBundle: !request.sharedStorage && container.bundle !== undefined,
    copyTrees: request.sharedStorage ? [] : treesToCopy(container),
    streamPages: strategy === 'stop-and-copy' && request.streamPages !== false,
    lazyRestore,
  };
}

/**
 * `auto` restores hash-pre-copy lazily wherever --lazy-restore would be accepted and the runtime is not known to lack
 * it: ferry's own handler fills 1 GiB from local pages in about half a second, so the window in which the source
 * stays held after the commit is short (docs/hash-precopy.md). A clone is never lazy.
 */
function autoLazyRestore(strategy: StrategyName, inputs: PlanInputs): boolean {
  if (inputs.request.strategy !== 'auto' || inputs.request.clone || strategy !== 'hash-pre-copy') return false;
  return inputs.runtime.features?.lazyRestore !== false && lazyRestoreMissing(inputs).length === 0;
}

/** What the destination lacks to restore lazily (userfaultfd, the pipe sysctl). */
function lazyRestoreMissing(inputs: PlanInputs): string[] {
  const d = strategyFacts(inputs.destination);
  return [
    ...(d.lazyPages ? [] : ['CRIU lazy pages (userfaultfd)']),
    ...((d.pipeMaxSizeBytes ?? 0) >= LAZY_PAGES_MIN_PIPE_BYTES ? [] : [`fs.pipe-max-size >= ${LAZY_PAGES_MIN_PIPE_BYTES}`]),
  ];
}

/**
 * --lazy-restore needs hash-pre-copy (the destination must hold every page before the freeze ends) and a destination
 * that restores lazily (userfaultfd, the pipe sysctl): refused when asked for with another strategy; under `auto`
 * another strategy simply restores eagerly (the reason says which was chosen).
 */
function checkLazyRestore(strategy: StrategyName, inputs: PlanInputs): boolean {
  if (strategy !== 'hash-pre-copy') {
    if (inputs.request.strategy === 'auto') return false;
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--lazy-restore works with hash-pre-copy only, not ${strategy}`, { hint: 'Use --strategy hash-pre-copy (or auto), or drop --lazy-restore.' });
  }
  const missing = lazyRestoreMissing(inputs);
  if (missing.length > 0) {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `--lazy-restore needs ${missing.join(' and ')} on ${inputs.destinationName}`, {
      hint: `Run \`ferry doctor\` on ${inputs.destinationName}, or migrate without --lazy-restore.`,
    });
  }
  return true;
}
