/**
 * Snapshots of running containers, kept on this host, to go back to: `ferry snapshot`, `snapshot ls`,
 * `snapshot revert`, `snapshot rm`.
 *
 *   ROOT/                         0700 (default /var/lib/ferry/snapshots)
 *     CT/                         0700, one directory per container name
 *       head.json                 the last snapshot and the container instance it was taken of (incremental parents)
 *       001-20261112T101530Z/     0700: CRIU's images, the runtime's record (ferry-container.json), dump.log,
 *         ferry-snapshot.json     and this record, written last: a snapshot directory without it is incomplete
 *
 * A snapshot is a checkpoint with leaveRunning: the container is frozen for the dump and runs on. It is full here
 * (every page) unless CRIU reports memory tracking, and then incremental on the container's previous snapshot (see
 * snapshot-kind.ts). It holds the process state (memory, open files, sockets, tmpfs mounts), not the container's
 * root filesystem or bind mounts: a revert does not undo changes to files.
 *
 * Contracts:
 * - take(): when it returns, the snapshot is complete and the container runs (or stays paused) as before; when it
 *   throws, the container is as it was (the adapter's checkpoint contract) and the half-written directory is gone.
 * - revert(): checks the snapshot and plans the restore first (ERR_IMAGE_NOT_FOUND, ERR_RUNTIME_NAME_TAKEN... leave
 *   the container untouched), then removes the container (runtime's remove: `runc delete -f`) and starts the snapshot
 *   under the same name from a private work directory. When it returns, the reverted container runs. When the
 *   restore fails, the container is gone, the error says so, and the snapshot is intact (it is only ever read).
 * - remove(): refuses a snapshot that others need as parent.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, chmodSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ContainerInfo, RuntimeName } from '../model/container';
import { FerryError, isFerryError } from '../model/ferry-error';
import { parseContainerSpec, type RuntimeRegistry } from '../runtime/registry';
import { diskEntries, summariseDiskUsage, type DiskEntry } from './disk-usage';
import { chooseSnapshotKind, containerInstance, dependentsOf, type SnapshotHead, type SnapshotKind } from './snapshot-kind';
import { formatSnapshotId, nextSnapshotSeq, parseSnapshotId, resolveSnapshotRef, sortSnapshotIds } from './snapshot-names';
import { ensureStoreRoot } from './snapshot-root';
import { ensurePrivateDir } from '../host/safe-files';
import { executeStartPlan, planStartFromImage, type StartedContainer } from './start-from-image';

export const DEFAULT_SNAPSHOT_ROOT = '/var/lib/ferry/snapshots';
export const SNAPSHOT_RECORD_FILE = 'ferry-snapshot.json';
export const SNAPSHOT_RECORD_FORMAT = 'ferry-snapshot/1';
const HEAD_FILE = 'head.json';
/** How many sequence numbers take() tries when another take races it for the same one. */
const MAX_SEQ_ATTEMPTS = 20;

export interface SnapshotRecord {
  format: typeof SNAPSHOT_RECORD_FORMAT;
  id: string;
  seq: number;
  container: string;
  runtime: RuntimeName;
  takenAt: string;
  kind: SnapshotKind;
  /** Why it is full, or what it is incremental on. */
  reason: string;
  /** The parent snapshot of an incremental one. */
  parent?: string;
  /** The container instance it was taken of (pid@created). */
  instance: string;
  /** Bytes of the image files (apparent size), as `ferry checkpoint` reports it. */
  imageBytes: number;
  frozenMs?: number;
  /** Wall time of the runtime's checkpoint. */
  dumpMs: number;
  pagesWritten?: number;
  pagesSkippedParent?: number;
  tcpEstablished: boolean;
}

export interface SnapshotInfo {
  id: string;
  seq: number;
  dir: string;
  /** False for a directory without its record (a take that was interrupted, or is running now). */
  complete: boolean;
  record?: SnapshotRecord;
  /** Allocated bytes of this snapshot's directory. */
  diskBytes: number;
}

export interface SnapshotListing {
  container: string;
  dir: string;
  snapshots: SnapshotInfo[];
  /** Allocated bytes of all snapshots, files shared between them counted once. */
  totalDiskBytes: number;
}

export interface TakeOptions {
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  signal?: AbortSignal;
}

export interface TakenSnapshot {
  record: SnapshotRecord;
  dir: string;
  container: ContainerInfo;
}

export interface RevertResult {
  snapshot: SnapshotRecord;
  dir: string;
  started: StartedContainer;
  /** Whether there was a container to stop. */
  stopped: boolean;
  stopMs: number;
  /** From the start of the stop until the restored container ran. */
  downtimeMs: number;
}

export interface SnapshotStoreOptions {
  registry: Pick<RuntimeRegistry, 'get' | 'findContainer'>;
  /** CRIU's memory tracking (CriuClient.features().memTrack); a rejection counts as unknown (full snapshots). */
  memTrack: () => Promise<boolean>;
  root?: string;
  /** Parent of the per-revert work directories (startFromImage's workRoot). */
  workRoot?: string;
  /** Use `root` although it is not empty and does not look like a store (the CLI's --adopt-store). */
  adoptRoot?: boolean;
  now?: () => Date;
}

export class SnapshotStore {
  readonly root: string;
  private readonly options: SnapshotStoreOptions;

  constructor(options: SnapshotStoreOptions) {
    this.options = options;
    this.root = resolve(options.root ?? DEFAULT_SNAPSHOT_ROOT);
  }

  /** ROOT/NAME for a container name or RUNTIME:NAME. */
  dirOf(container: string): string {
    return join(this.root, containerName(container));
  }

  // ------------------------------------------------------------------------------------------------ take

  async take(spec: string, options: TakeOptions = {}): Promise<TakenSnapshot> {
    const { adapter, container } = await this.options.registry.findContainer(spec);
    const name = container.ref.id;
    const ctDir = this.ensureContainerDir(name);
    const instance = containerInstance(container.pid, container.createdAt);
    let memTrack: boolean | undefined;
    let memTrackError: string | undefined;
    try {
      memTrack = await this.options.memTrack();
    } catch (err) {
      memTrackError = (err as Error).message;
    }
    const head = readHead(ctDir);
    const decision = chooseSnapshotKind({
      memTrack,
      ...(memTrackError === undefined ? {} : { memTrackError }),
      instance,
      head,
      headComplete: head !== undefined && isComplete(join(ctDir, head.snapshot)),
    });
    const now = (this.options.now ?? (() => new Date()))();
    const { id, seq, dir } = makeSnapshotDir(ctDir, now);
    try {
      const result = await adapter.checkpoint(container.ref, {
        imagesDir: dir,
        leaveRunning: true,
        ...(decision.parent ? { parentImage: join('..', decision.parent) } : {}),
        tcpEstablished: options.tcpEstablished === true,
        fileLocks: options.fileLocks ?? true,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const st = result.stats;
      const record: SnapshotRecord = {
        format: SNAPSHOT_RECORD_FORMAT,
        id,
        seq,
        container: name,
        runtime: container.ref.runtime,
        takenAt: now.toISOString(),
        kind: decision.kind,
        reason: decision.reason,
        ...(decision.parent ? { parent: decision.parent } : {}),
        instance,
        imageBytes: st.imageBytes,
        ...(st.frozenMs === undefined ? {} : { frozenMs: st.frozenMs }),
        dumpMs: st.totalMs,
        ...(st.pagesWritten === undefined ? {} : { pagesWritten: st.pagesWritten }),
        ...(st.pagesSkippedParent === undefined ? {} : { pagesSkippedParent: st.pagesSkippedParent }),
        tcpEstablished: options.tcpEstablished === true,
      };
      writeJsonAtomic(join(dir, SNAPSHOT_RECORD_FILE), record);
      writeJsonAtomic(join(ctDir, HEAD_FILE), { snapshot: id, instance } satisfies SnapshotHead);
      return { record, dir, container: result.container };
    } catch (err) {
      removeUnlessMounted(dir);
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------ list

  async list(container: string): Promise<SnapshotListing> {
    const name = containerName(container);
    const ctDir = join(this.root, name);
    const names = existsSync(ctDir) ? readdirSync(ctDir) : [];
    const snapshots: SnapshotInfo[] = [];
    const entries: Record<string, DiskEntry[]> = {};
    for (const { id, seq } of sortSnapshotIds(names)) {
      const dir = join(ctDir, id);
      entries[id] = await diskEntries(dir);
      const record = readRecord(dir);
      snapshots.push({ id, seq, dir, complete: record !== undefined, ...(record ? { record } : {}), diskBytes: 0 });
    }
    const usage = summariseDiskUsage(entries);
    for (const s of snapshots) s.diskBytes = usage.byOwner[s.id] ?? 0;
    return { container: name, dir: ctDir, snapshots, totalDiskBytes: usage.totalBytes };
  }

  /** The complete snapshot `ref` names (id, number or "latest"); ERR_IMAGE_NOT_FOUND with the choices otherwise. */
  async find(container: string, ref: string, options: { includeIncomplete?: boolean } = {}): Promise<SnapshotInfo> {
    const listing = await this.list(container);
    const candidates = listing.snapshots.filter((s) => s.complete || options.includeIncomplete);
    const id = resolveSnapshotRef(ref, candidates.map((s) => s.id));
    const found = candidates.find((s) => s.id === id);
    if (found) return found;
    const available = listing.snapshots.filter((s) => s.complete).map((s) => s.id);
    throw new FerryError(
      'ERR_IMAGE_NOT_FOUND',
      available.length === 0
        ? `${listing.container} has no snapshot ${ref}: it has no snapshots at all (in ${listing.dir})`
        : `${listing.container} has no snapshot ${ref}`,
      {
        hint:
          available.length === 0
            ? `Take one with \`ferry snapshot ${listing.container}\`.`
            : `Run \`ferry snapshot ls ${listing.container}\`; name a snapshot by its id, its number or "latest" (it has ${available.join(', ')}).`,
        details: { container: listing.container, snapshot: ref, available, dir: listing.dir },
      },
    );
  }

  // ------------------------------------------------------------------------------------------------ revert

  async revert(container: string, ref: string, options: { signal?: AbortSignal } = {}): Promise<RevertResult> {
    const name = containerName(container);
    const requested = parseContainerSpec(container).runtime;
    const snapshot = await this.find(name, ref);
    const record = snapshot.record!;
    if (requested !== undefined && requested !== record.runtime) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `snapshot ${snapshot.id} of ${name} is of a ${record.runtime} container, not ${requested}`, {
        hint: `Use ${record.runtime}:${name}, or just ${name}.`,
      });
    }
    const listing = await this.list(name);
    for (let parent = record.parent, hops = 0; parent !== undefined && hops <= listing.snapshots.length; hops++) {
      const p = listing.snapshots.find((s) => s.id === parent);
      if (!p?.complete) {
        throw new FerryError('ERR_IMAGE_NOT_FOUND', `snapshot ${snapshot.id} of ${name} is incremental on ${parent}, which is missing`, {
          hint: 'Revert to a full snapshot (see `ferry snapshot ls`).',
          details: { snapshot: snapshot.id, parent },
        });
      }
      parent = p.record?.parent;
    }
    const adapter = this.options.registry.get(record.runtime);
    // Everything that can be checked is checked before the container is touched.
    const plan = await planStartFromImage(adapter, {
      imagesDir: snapshot.dir,
      name,
      replacing: name,
      ...(this.options.workRoot ? { workRoot: this.options.workRoot } : {}),
    });
    const stopStarted = Date.now();
    let stopped = false;
    try {
      await adapter.inspect(name);
      stopped = true;
    } catch (err) {
      if (!isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) throw err;
    }
    try {
      await adapter.remove(name);
    } catch (err) {
      const code = isFerryError(err) ? err.code : 'ERR_RUNTIME_FAILED';
      throw new FerryError(code, `could not stop ${name} to revert it to snapshot ${snapshot.id}: ${(err as Error).message}`, {
        hint: `Check it with \`ferry ps\`; nothing was restored, the snapshot is in ${snapshot.dir}.`,
        cause: err,
      });
    }
    const stopMs = Date.now() - stopStarted;
    try {
      const started = await executeStartPlan(adapter, plan, options.signal);
      return { snapshot: record, dir: snapshot.dir, started, stopped, stopMs, downtimeMs: Date.now() - stopStarted };
    } catch (err) {
      const code = isFerryError(err) ? err.code : 'ERR_RUNTIME_FAILED';
      const hint = isFerryError(err) && err.hint ? ` ${err.hint}` : '';
      throw new FerryError(
        code,
        `${name} was stopped, but restoring snapshot ${snapshot.id} failed, so ${name} is not running now. The snapshot is intact (${snapshot.dir}). Cause: ${(err as Error).message}`,
        {
          hint: `Try again with \`ferry snapshot revert ${name} ${snapshot.id}\`, or another snapshot.${hint}`,
          cause: err,
          details: { container: name, snapshot: snapshot.id, dir: snapshot.dir, stopped, ...(isFerryError(err) ? err.details : {}) },
        },
      );
    }
  }

  // ------------------------------------------------------------------------------------------------ remove

  /** Deletes a snapshot (complete or not); ERR_PRECHECK_BAD_INPUT when other snapshots need it as their parent. */
  async remove(container: string, ref: string): Promise<SnapshotInfo> {
    const name = containerName(container);
    const snapshot = await this.find(name, ref, { includeIncomplete: true });
    const listing = await this.list(name);
    const needed = dependentsOf(
      snapshot.id,
      listing.snapshots.flatMap((s) => (s.record ? [{ id: s.id, ...(s.record.parent ? { parent: s.record.parent } : {}) }] : [])),
    );
    if (needed.length > 0) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `snapshot ${snapshot.id} of ${name} is the parent of ${needed.join(', ')}`, {
        hint: `Remove ${needed.join(', ')} first (newest first), or keep it.`,
        details: { snapshot: snapshot.id, dependents: needed },
      });
    }
    if (!removeUnlessMounted(snapshot.dir)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${snapshot.dir} has something mounted below it; not removing it`, {
        hint: 'Unmount it first (a restore may be running from it).',
      });
    }
    return snapshot;
  }

  // ------------------------------------------------------------------------------------------------ internals

  private ensureContainerDir(name: string): string {
    ensureStoreRoot(this.root, this.options.adoptRoot);
    return ensurePrivateDir(join(this.root, name));
  }
}

/** The container name of "NAME" or "RUNTIME:NAME", checked to be one safe path component. */
function containerName(spec: string): string {
  const { id } = parseContainerSpec(spec);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/.test(id)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${id}" is not a valid container name`, {
      hint: 'Container names use letters, digits and _ + - . and do not start with - . or +.',
    });
  }
  return id;
}

/** A new, empty snapshot directory with the next free sequence number (mkdir is the lock between racing takes). */
function makeSnapshotDir(ctDir: string, now: Date): { id: string; seq: number; dir: string } {
  let seq = nextSnapshotSeq(readdirSync(ctDir));
  for (let attempt = 0; attempt < MAX_SEQ_ATTEMPTS; attempt++, seq++) {
    const id = formatSnapshotId(seq, now);
    const dir = join(ctDir, id);
    try {
      mkdirSync(dir, { mode: 0o700 });
      chmodSync(dir, 0o700);
      return { id, seq, dir };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new FerryError('ERR_PRECHECK_BAD_INPUT', `could not find a free snapshot number in ${ctDir}`, {
    hint: 'Other snapshots of this container are being taken right now; try again.',
  });
}

function readRecord(dir: string): SnapshotRecord | undefined {
  try {
    const value = JSON.parse(readFileSync(join(dir, SNAPSHOT_RECORD_FILE), 'utf8')) as SnapshotRecord;
    return value?.format === SNAPSHOT_RECORD_FORMAT && parseSnapshotId(value.id) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isComplete(dir: string): boolean {
  return readRecord(dir) !== undefined;
}

function readHead(ctDir: string): SnapshotHead | undefined {
  try {
    const value = JSON.parse(readFileSync(join(ctDir, HEAD_FILE), 'utf8')) as SnapshotHead;
    return typeof value?.snapshot === 'string' && typeof value.instance === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** rm -rf, but never across a mount (a restore's rootfs bind, a cgroup yard); true when removed. */
function removeUnlessMounted(dir: string): boolean {
  let mountinfo = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    /* no /proc: nothing can be mounted that we would see */
  }
  const mounted = mountinfo.split('\n').some((line) => {
    const mp = line.split(' ')[4] ?? '';
    return mp === dir || mp.startsWith(`${dir}/`);
  });
  if (mounted) return false;
  rmSync(dir, { recursive: true, force: true });
  return true;
}
