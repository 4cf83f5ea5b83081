/**
 * Starting containers from a checkpoint image instead of booting them: the image is only read, never written, and
 * one image starts any number of copies. `ferry start --from` and `ferry snapshot revert` both come here; underneath
 * it is one RuntimeAdapter.restore() per container, as `ferry restore` does. What this adds around that call:
 *
 * - A private work directory per start (under workRoot, 0700): CRIU's restore.log and stats-restore, and runc's
 *   messages, go there instead of into the image directory (restore's default), so the image stays byte-for-byte
 *   as it was and copies started at the same time do not write over each other's logs. It is removed after a
 *   successful start and kept after a failed one (the error names the log in it).
 * - A network namespace per copy when the recorded one is in use. The runc adapter already gives a copy its own
 *   namespace when the ORIGINAL container still holds the recorded one; a second copy started after the original
 *   stopped would join the first copy's namespace, and both would listen on the same address and port. Here any
 *   running container that joined the recorded namespace counts (except the one being replaced, for a revert), and
 *   a copy that cannot join gets its own namespace with the recorded interfaces and addresses (the adapter makes it,
 *   owns it, and remove() deletes it).
 *
 * Contract (as RuntimeAdapter.restore): when startFromImage() returns, the container runs; when it throws, nothing of
 * it runs and nothing it created is left, except the work directory with the logs. The image is never modified.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readStats, type RestoreStats } from '../image/image-records';
import type { ContainerInfo } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { DEFAULT_NETNS_PREFIX, RuncAdapter } from '../runtime/runc-adapter';
import { netnsPath } from '../runtime/runc-netns';
import { readCheckpointRecord, type CheckpointRecord } from '../runtime/checkpoint-record';
import { absoluteBundlePaths, networkNamespaceOf, type OciConfig } from '../runtime/runc-state';
import type { RuntimeAdapter } from '../runtime/runtime-adapter';

/** Default parent of the per-start work directories (a tmpfs: logs of failed starts go at reboot). */
export const DEFAULT_START_WORK_ROOT = '/run/ferry/start';

// ---------------------------------------------------------------------------------------------------------------
// Pure decisions

/** How a started container gets its network namespace. */
export type NetnsMode =
  /** The container has no namespace path in its config (host network, or runc makes a fresh one). */
  | 'none'
  /** Join the recorded namespace: it exists and no other running container is in it. */
  | 'join'
  /** The recorded namespace is not on this host: the runtime re-creates it with the recorded addresses. */
  | 'recreate'
  /** The recorded namespace is in use: the container gets its own, with the recorded addresses. */
  | 'own';

export interface NetnsChoice {
  mode: NetnsMode;
  /** The recorded namespace path, when there is one. */
  recordedPath?: string;
  /** Containers found in the recorded namespace (mode 'own'). */
  holders: string[];
  reason: string;
}

/** Whether a copy joins, re-creates or gets its own network namespace, with the reason (pure). */
export function chooseNetns(input: { recordedPath: string | undefined; pathExists: boolean; holders: readonly string[] }): NetnsChoice {
  const { recordedPath, pathExists } = input;
  const holders = [...input.holders].sort();
  if (recordedPath === undefined) return { mode: 'none', holders: [], reason: 'the container has no network namespace path' };
  if (!pathExists) return { mode: 'recreate', recordedPath, holders: [], reason: `${recordedPath} does not exist on this host` };
  if (holders.length > 0) {
    return { mode: 'own', recordedPath, holders, reason: `${recordedPath} is in use by ${holders.join(', ')}` };
  }
  return { mode: 'join', recordedPath, holders: [], reason: `no running container uses ${recordedPath}` };
}

/**
 * The config.json a copy with its own namespace is restored from: the recorded one with the namespace path pointed
 * at `missingNetnsPath` (a path that does not exist, so the runtime re-creates the namespace for this container and
 * rewrites the path to it), the rootfs and relative bind-mount sources made absolute against the original bundle.
 */
export function configForOwnNetns(config: OciConfig, change: { originalBundle: string; missingNetnsPath: string }): OciConfig {
  const copy = absoluteBundlePaths(config, change.originalBundle);
  const ns = copy.linux?.namespaces?.find((n) => n.type === 'network');
  if (ns) ns.path = change.missingNetnsPath;
  return copy;
}

export interface CopyNamesInput {
  /** --name: the one container's name. */
  name?: string;
  /** --name-prefix: copies are PREFIX-1 ... PREFIX-N. */
  namePrefix?: string;
  count: number;
  /** The checkpointed container's name (the default). */
  recordedName?: string;
}

/** The names `ferry start --from` gives its containers; ERR_PRECHECK_BAD_INPUT for combinations that make no sense. */
export function copyNames(input: CopyNamesInput): string[] {
  const { name, namePrefix, count } = input;
  if (!Number.isInteger(count) || count < 1) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--count must be a whole number >= 1, got ${count}`);
  }
  if (name !== undefined && namePrefix !== undefined) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', '--name and --name-prefix exclude each other', {
      hint: 'Use --name for one container, --name-prefix (with --count) for numbered copies.',
    });
  }
  if (name !== undefined && count > 1) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--name names one container, but --count is ${count}`, {
      hint: `Use --name-prefix ${name} --count ${count} to start ${name}-1 ... ${name}-${count}.`,
    });
  }
  if (namePrefix !== undefined) return Array.from({ length: count }, (_, i) => `${namePrefix}-${i + 1}`);
  if (count > 1) {
    if (input.recordedName === undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'the image does not record a container name', { hint: 'Pass --name-prefix.' });
    }
    return Array.from({ length: count }, (_, i) => `${input.recordedName}-${i + 1}`);
  }
  const single = name ?? input.recordedName;
  if (single === undefined) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'the image does not record a container name', { hint: 'Pass --name.' });
  }
  return [single];
}

// ---------------------------------------------------------------------------------------------------------------
// Plan, then start

export interface StartFromImageOptions {
  imagesDir: string;
  /** Name of the started container; default: the checkpointed one. */
  name?: string;
  /** Parent of the per-start work directory (default /run/ferry/start). */
  workRoot?: string;
  /** Override the dump's CRIU flags (default: repeat them, as recorded in the image). */
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  /** A container that is about to be removed and replaced by this one (a revert): its namespace is free. */
  replacing?: string;
  signal?: AbortSignal;
}

export interface StartPlan {
  imagesDir: string;
  name: string;
  /** The runc adapter's record of the checkpoint, when the image has one. */
  record?: CheckpointRecord<'runc'>;
  netns: NetnsChoice;
  workRoot: string;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
}

export interface StartedContainer {
  container: ContainerInfo;
  imagesDir: string;
  /** Wall time of the runtime's restore. */
  restoreMs: number;
  netns: NetnsChoice;
  /** CRIU's statistics of this restore, when it wrote them. */
  criu?: RestoreStats;
}

/**
 * Checks the image and decides the network namespace, without changing anything. ERR_IMAGE_NOT_FOUND when the
 * directory holds no CRIU images; ERR_RUNTIME_NAME_TAKEN when the name is taken (unless it is `replacing`) or a
 * copy would need a namespace whose name exists already.
 */
export async function planStartFromImage(adapter: RuntimeAdapter, options: StartFromImageOptions): Promise<StartPlan> {
  const imagesDir = resolve(options.imagesDir);
  const record = readImageRecord(imagesDir);
  const [name] = copyNames({ count: 1, ...(options.name === undefined ? {} : { name: options.name }), ...(record ? { recordedName: record.id } : {}) });
  if (name !== options.replacing && (await containerExists(adapter, name!))) {
    throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `${adapter.name} already has a container named ${name}`, {
      hint: `Start it under another name (--name), or remove the existing one first.`,
      details: { name },
    });
  }
  const recordedPath = record?.netns?.path ?? networkNamespaceOf(record?.config ?? {})?.path;
  const pathExists = recordedPath !== undefined && existsSync(recordedPath);
  let holders: string[] = [];
  if (recordedPath !== undefined && pathExists) {
    const running = await adapter.list();
    holders = running
      .filter((c) => c.netns?.path === recordedPath && c.ref.id !== options.replacing && ['running', 'paused', 'created'].includes(c.state))
      .map((c) => c.ref.id);
  }
  const netns = chooseNetns({ recordedPath, pathExists, holders });
  if (netns.mode === 'own' || netns.mode === 'recreate') {
    const ownPath = netnsPath(`${netnsPrefixOf(adapter)}${name}`);
    if (existsSync(ownPath)) {
      throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `${name} needs its own network namespace (${netns.reason}), but ${ownPath} exists already`, {
        hint: `Remove it (\`ip netns delete ${ownPath.split('/').pop()}\`) if no container uses it, or choose another name.`,
        details: { name, netns: ownPath },
      });
    }
  }
  return {
    imagesDir,
    name: name!,
    ...(record ? { record } : {}),
    netns,
    workRoot: resolve(options.workRoot ?? DEFAULT_START_WORK_ROOT),
    ...(options.tcpEstablished === undefined ? {} : { tcpEstablished: options.tcpEstablished }),
    ...(options.fileLocks === undefined ? {} : { fileLocks: options.fileLocks }),
  };
}

/** Carries out a plan: one adapter.restore() from a private work directory. See the contract above. */
export async function executeStartPlan(adapter: RuntimeAdapter, plan: StartPlan, signal?: AbortSignal): Promise<StartedContainer> {
  mkdirSync(plan.workRoot, { recursive: true, mode: 0o700 });
  const workDir = mkdtempSync(join(plan.workRoot, `${plan.name}-`));
  let bundle: string | undefined;
  if (plan.netns.mode === 'own' && plan.record) {
    bundle = join(workDir, 'bundle');
    mkdirSync(bundle, { mode: 0o700 });
    const config = configForOwnNetns(plan.record.config, {
      originalBundle: plan.record.bundle,
      missingNetnsPath: join(workDir, 'netns-of-this-copy-does-not-exist-yet'),
    });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
  }
  const result = await adapter.restore({
    imagesDir: plan.imagesDir,
    workDir,
    name: plan.name,
    ...(bundle ? { bundle } : {}),
    ...(plan.tcpEstablished === undefined ? {} : { tcpEstablished: plan.tcpEstablished }),
    ...(plan.fileLocks === undefined ? {} : { fileLocks: plan.fileLocks }),
    ...(signal ? { signal } : {}),
  });
  let criu: RestoreStats | undefined;
  try {
    criu = (await readStats(join(workDir, 'stats-restore'))).restore;
  } catch {
    /* no statistics: the report goes without them */
  }
  // The runtime has its own copy of the bundle (the namespace path changed), so the work dir can go.
  if (!bundle || result.container.bundle !== bundle) rmSync(workDir, { recursive: true, force: true });
  return { container: result.container, imagesDir: plan.imagesDir, restoreMs: result.restoreMs, netns: plan.netns, ...(criu ? { criu } : {}) };
}

/** Starts one container from a checkpoint image, which stays untouched; when it throws, nothing of the copy runs. */
export async function startFromImage(adapter: RuntimeAdapter, options: StartFromImageOptions): Promise<StartedContainer> {
  const plan = await planStartFromImage(adapter, options);
  return executeStartPlan(adapter, plan, options.signal);
}

/**
 * Starts `count` containers from the same image (names from copyNames: --name, --name-prefix, or the checkpointed
 * name), one after the other: each sees the ones before it, so each gets a namespace of its own when they would
 * collide. Every name is checked before anything starts. All or nothing: when one fails, the ones this call
 * started are removed again and the error is thrown.
 */
export async function startCopiesFromImage(
  adapter: RuntimeAdapter,
  options: Omit<StartFromImageOptions, 'name' | 'replacing'> & {
    name?: string;
    namePrefix?: string;
    count?: number;
    onStarted?: (started: StartedContainer) => void;
  },
): Promise<StartedContainer[]> {
  const { name, namePrefix, count, onStarted, ...common } = options;
  const record = readImageRecord(resolve(options.imagesDir));
  const names = copyNames({
    count: count ?? 1,
    ...(name === undefined ? {} : { name }),
    ...(namePrefix === undefined ? {} : { namePrefix }),
    ...(record ? { recordedName: record.id } : {}),
  });
  for (const one of names) {
    if (await containerExists(adapter, one)) {
      throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `${adapter.name} already has a container named ${one}; nothing was started`, {
        hint: names.length > 1 ? 'Choose another --name-prefix, or remove the existing containers first.' : 'Choose another --name, or remove the existing container first.',
        details: { name: one },
      });
    }
  }
  const started: StartedContainer[] = [];
  try {
    for (const one of names) {
      const s = await startFromImage(adapter, { ...common, name: one });
      started.push(s);
      onStarted?.(s);
    }
    return started;
  } catch (err) {
    for (const s of started.reverse()) await adapter.remove(s.container.ref.id).catch(() => undefined);
    throw err;
  }
}

/** The runc record of an image directory (undefined for images without one); ERR_IMAGE_NOT_FOUND without images. */
function readImageRecord(imagesDir: string): CheckpointRecord<'runc'> | undefined {
  if (!existsSync(join(imagesDir, 'inventory.img'))) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} holds no CRIU images (no inventory.img)`, {
      hint: 'Pass a directory written by `ferry checkpoint` or `ferry snapshot`.',
      details: { imagesDir },
    });
  }
  return readCheckpointRecord(imagesDir, 'runc');
}

async function containerExists(adapter: RuntimeAdapter, name: string): Promise<boolean> {
  try {
    await adapter.inspect(name);
    return true;
  } catch (err) {
    if (err instanceof FerryError && err.code === 'ERR_RUNTIME_NOT_FOUND') return false;
    throw err;
  }
}

function netnsPrefixOf(adapter: RuntimeAdapter): string {
  return adapter instanceof RuncAdapter ? adapter.options.netnsPrefix : DEFAULT_NETNS_PREFIX;
}
