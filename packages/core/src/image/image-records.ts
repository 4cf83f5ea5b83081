/**
 * Typed readers for the images ferry understands, converting CRIU's wire objects into camelCase records with
 * units in their names. CRIU's stats times are microseconds (stats.c encodes timeval totals as
 * tv_sec * 1000000 + tv_usec, and `--display-stats` prints them as "us"); they become fractional milliseconds here.
 */
import { statSync } from 'node:fs';
import { imageCorrupt } from './image-errors';
import { readImageEntries, type ImageContents, type WireObject } from './image-file';
import { INVENTORY_IMAGE, LSM_TYPES, MM_IMAGE, MmEntry, PAGEMAP_IMAGE, PagemapEntry, PagemapHead, PE_FLAGS, PSTREE_IMAGE, STATS_IMAGE } from './image-schema';

export interface InventoryInfo {
  /** 2 (format v1.1, set magic in every image) as CRIU 4.2.1 writes it; 1 for images without set magics. */
  imgVersion: number;
  fdinfoPerId: boolean;
  nsPerId: boolean;
  rootCgSet?: number;
  lsm: (typeof LSM_TYPES)[number] | 'unknown';
  /** Only in pre-dump images: CRIU's pre-dump mode number as stored (splice or read). */
  preDumpMode?: number;
  tcpClose: boolean;
  /** How CRIU locked the network during the dump; a number if CRIU adds a method ferry does not know. */
  networkLock?: (typeof NETWORK_LOCK_METHODS)[number] | number;
  /** Only written with --track-mem; in CRIU's own unit, meaningful only compared with another image's value. */
  dumpUptimeRaw?: string;
  /** UUID of the CRIU run that dumped (names its network-lock tables). */
  dumpRunId?: string;
}

export interface PstreeTask {
  /** As seen in the dumped tree's own PID namespace: 1 for the init of a container or `unshare --pid` tree. */
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
}

export interface PagemapRange {
  vaddr: bigint;
  nrPages: number;
  flags: number;
}

export interface Pagemap {
  pagesId: number;
  ranges: PagemapRange[];
}

export interface DumpStats {
  freezingMs: number;
  frozenMs: number;
  memdumpMs: number;
  memwriteMs: number;
  irmapResolveMs?: number;
  pagesScanned: number;
  pagesSkippedParent: number;
  pagesWritten: number;
  pagesLazy: number;
  pagePipes?: number;
  pagePipeBufs?: number;
  shpagesScanned?: number;
  shpagesSkippedParent?: number;
  shpagesWritten?: number;
}

export interface RestoreStats {
  pagesCompared: number;
  pagesSkippedCow: number;
  forkingMs: number;
  restoreMs: number;
  pagesRestored?: number;
}

/** inventory.img's fields; ERR_IMAGE_CORRUPT when it does not decode. */
export async function readInventory(path: string): Promise<InventoryInfo> {
  const image = await readImageEntries(path, INVENTORY_IMAGE);
  const v = onlyEntry(image);
  const lsm = v.lsmtype === undefined ? 'none' : (LSM_TYPES[v.lsmtype as number] ?? 'unknown');
  return dropUndefined({
    imgVersion: v.img_version as number,
    fdinfoPerId: v.fdinfo_per_id === true,
    nsPerId: v.ns_per_id === true,
    rootCgSet: v.root_cg_set as number | undefined,
    lsm,
    preDumpMode: v.pre_dump_mode as number | undefined,
    tcpClose: v.tcp_close === true,
    networkLock: v.network_lock_method === undefined ? undefined : networkLock(v.network_lock_method as number),
    dumpUptimeRaw: v.dump_uptime as string | undefined,
    dumpRunId: v.dump_criu_run_id as string | undefined,
  });
}

/** pstree.img: the dumped process tree; ERR_IMAGE_CORRUPT when it does not decode. */
export async function readPstree(path: string): Promise<PstreeTask[]> {
  const image = await readImageEntries(path, PSTREE_IMAGE);
  return image.entries.map(({ value: v }) => ({
    pid: v.pid as number,
    ppid: v.ppid as number,
    pgid: v.pgid as number,
    sid: v.sid as number,
    threads: (v.threads as number[] | undefined) ?? [],
  }));
}

/**
 * Builds the decoders readPagemap and readVmaBounds use now instead of at their first call (protobufjs generates
 * them then: ~10 ms). For a process that waits for work which must then be quick (the destination's page relay,
 * started before the freeze).
 */
export function prepareImageDecoders(): void {
  for (const type of [PagemapHead, PagemapEntry, MmEntry]) type.setup();
}

/** A pagemap image's ranges; ERR_IMAGE_CORRUPT when it does not decode or has no head. */
export async function readPagemap(path: string): Promise<Pagemap> {
  const image = await readImageEntries(path, PAGEMAP_IMAGE);
  if (!image.head) throw imageCorrupt(path, 'no pagemap_head: the file ends after its magic', { offset: image.entries.length });
  const ranges = image.entries.map(({ value: v, offset }) => {
    const nrPages = v.nr_pages !== undefined ? toSafeNumber(v.nr_pages, path, offset) : (v.compat_nr_pages as number);
    // Before flags existed, an entry was either in the parent or present here.
    const flags = v.flags !== undefined ? (v.flags as number) : v.in_parent === true ? PE_FLAGS.PARENT : PE_FLAGS.PRESENT;
    return { vaddr: BigInt(v.vaddr as string), nrPages, flags };
  });
  return { pagesId: image.head.value.pages_id as number, ranges };
}

/** The bounds of a task's VMAs (mm-PID.img), in the image's order (ascending). */
export async function readVmaBounds(path: string): Promise<{ start: bigint; end: bigint }[]> {
  const image = await readImageEntries(path, MM_IMAGE);
  const vmas = (image.entries[0]?.value.vmas as WireObject[] | undefined) ?? [];
  return vmas.map((v) => ({ start: BigInt(v.start as string), end: BigInt(v.end as string) }));
}

export interface ImageStats {
  dump?: DumpStats;
  restore?: RestoreStats;
}

/** CRIU's stats file at path if it was written at or after `since` (ms since the epoch); undefined otherwise. */
export async function statsIfWritten(path: string, since: number): Promise<ImageStats | undefined> {
  try {
    if (statSync(path).mtimeMs < since) return undefined;
    return await readStats(path);
  } catch {
    return undefined; // missing or unreadable: the numbers are a report, not a result
  }
}

/** Reads stats-dump or stats-restore; each holds one stats_entry with the matching half filled in. */
export async function readStats(path: string): Promise<ImageStats> {
  const image = await readImageEntries(path, STATS_IMAGE);
  const v = onlyEntry(image);
  const stats: ImageStats = {};
  const d = v.dump as WireObject | undefined;
  if (d) {
    const n = (key: string) => optionalNumber(d[key], path);
    stats.dump = dropUndefined({
      freezingMs: usToMs(d.freezing_time),
      frozenMs: usToMs(d.frozen_time),
      memdumpMs: usToMs(d.memdump_time),
      memwriteMs: usToMs(d.memwrite_time),
      irmapResolveMs: d.irmap_resolve === undefined ? undefined : usToMs(d.irmap_resolve),
      pagesScanned: n('pages_scanned')!,
      pagesSkippedParent: n('pages_skipped_parent')!,
      pagesWritten: n('pages_written')!,
      pagesLazy: n('pages_lazy')!,
      pagePipes: n('page_pipes'),
      pagePipeBufs: n('page_pipe_bufs'),
      shpagesScanned: n('shpages_scanned'),
      shpagesSkippedParent: n('shpages_skipped_parent'),
      shpagesWritten: n('shpages_written'),
    });
  }
  const r = v.restore as WireObject | undefined;
  if (r) {
    stats.restore = dropUndefined({
      pagesCompared: optionalNumber(r.pages_compared, path)!,
      pagesSkippedCow: optionalNumber(r.pages_skipped_cow, path)!,
      forkingMs: usToMs(r.forking_time),
      restoreMs: usToMs(r.restore_time),
      pagesRestored: optionalNumber(r.pages_restored, path),
    });
  }
  return stats;
}

// The image stores CRIU's internal enum, which counts from 0 (checked against real dumps with --network-lock
// skip); the RPC's criu_network_lock_method counts from 1.
const NETWORK_LOCK_METHODS = ['iptables', 'nftables', 'skip'] as const;

function networkLock(value: number): (typeof NETWORK_LOCK_METHODS)[number] | number {
  return NETWORK_LOCK_METHODS[value] ?? value;
}

function onlyEntry(image: ImageContents): WireObject {
  const [first] = image.entries;
  if (!first) throw imageCorrupt(image.path, `no ${image.kind.name} entry after the magic`, { offset: image.oldFormat ? 4 : 8 });
  return first.value;
}

function usToMs(value: unknown): number {
  return (value as number) / 1000;
}

function optionalNumber(value: unknown, path: string): number | undefined {
  return value === undefined ? undefined : toSafeNumber(value, path, undefined);
}

function toSafeNumber(value: unknown, path: string, offset: number | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw imageCorrupt(path, `counter ${String(value)} is out of range`, { offset });
  return n;
}

function dropUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}
