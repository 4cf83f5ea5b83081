/**
 * The model of one CRIU images directory: which tasks it holds, how much of their memory is stored here (versus
 * in the parent image or left for lazy restore), what CRIU measured while dumping or restoring, and its files.
 */
import { open, readlink, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isFerryError } from '../model/ferry-error';
import { walkImageDir, type WalkEntry } from './dir-walk';
import { imageCorrupt, imageNotFound, isErrno } from './image-errors';
import { identifyImageHeader } from './image-magic';
import {
  readInventory,
  readPagemap,
  readPstree,
  readStats,
  type ImageStats,
  type InventoryInfo,
  type Pagemap,
  type PstreeTask,
} from './image-records';
import { PE_FLAGS } from './image-schema';

export const DEFAULT_PAGE_SIZE = 4096;

export type MemoryOwner = { kind: 'task'; pid: number } | { kind: 'shmem' | 'secretmem'; id: string };

export interface MemoryImage {
  owner: MemoryOwner;
  pagemapFile: string;
  pagesId: number;
  /** pages-N.img, relative to the directory. */
  pagesFile: string;
  /** Pages whose contents are stored in pagesFile. */
  presentPages: number;
  /** Pages left in the parent image (pre-dump chain). */
  parentPages: number;
  /** Pages left for lazy restore (post-copy): in no pages file here, served by the source's page server. */
  lazyPages: number;
  /** Size of pagesFile: presentPages * pageSize. */
  pagesBytes: number;
}

export interface ImageTask extends PstreeTask {
  /** Undefined when the task has no pagemap (a zombie, or a thread-group member sharing another's mm). */
  memory?: MemoryImage;
}

export interface ImageFile {
  /** Relative to the directory, '/'-separated. */
  name: string;
  type: 'file' | 'symlink';
  bytes: number;
  /** CRIU's image type read from the header ("PSTREE", "CORE"...), "PAGES" for pages-N.img; absent for raw files. */
  imageType?: string;
  target?: string;
}

export interface ParentImage {
  /** The symlink's text as CRIU wrote it (usually relative, e.g. "../1"). */
  target: string;
  /** Absolute, with symlinks resolved when the target exists. */
  path: string;
  exists: boolean;
}

export interface ImageSetTotals {
  tasks: number;
  threads: number;
  presentPages: number;
  parentPages: number;
  lazyPages: number;
  /** Sum of all pages-*.img sizes. */
  pagesBytes: number;
  files: number;
  /** Sum of all regular files, pages included; the parent directory is not counted. */
  bytes: number;
}

export interface ImageSet {
  dir: string;
  /** 'pre-dump' for directories without pstree.img: pre-dump writes memory, inventory and stats only. */
  kind: 'dump' | 'pre-dump';
  inventory: InventoryInfo;
  tasks: ImageTask[];
  /** One per pagemap file: tasks by pid, then shared memory (shmem, secretmem) by id. */
  memory: MemoryImage[];
  totals: ImageSetTotals;
  files: ImageFile[];
  parent?: ParentImage;
  stats: ImageStats;
  pageSize: number;
}

export interface ReadImageSetOptions {
  /** Page size of the host that dumped; 4096 on x86_64. */
  pageSize?: number;
  /** CRIU's work directory (-W), where stats-dump / stats-restore go when it differs from the images directory. */
  workDir?: string;
}

const PAGEMAP_NAME = /^pagemap-(?:(shmem|secretmem)-)?(\d+)\.img$/;
const PAGES_NAME = /^pages-\d+\.img$/;

/**
 * Reads an images directory. Throws ERR_IMAGE_NOT_FOUND when `dir` is not a CRIU images directory (no
 * inventory.img), ERR_IMAGE_CORRUPT when an image is malformed or a pages file does not match its pagemap.
 * Reads only; never modifies the directory.
 */
export async function readImageSet(dir: string, options: ReadImageSetOptions = {}): Promise<ImageSet> {
  const absDir = resolve(dir);
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const walked = await walkImageDir(absDir);
  const names = new Set(walked.map((e) => e.path));
  if (!names.has('inventory.img')) throw imageNotFound(absDir, 'no inventory.img: not a CRIU images directory');

  const [inventory, pstree, memory, files, parent, stats] = await Promise.all([
    readInventory(join(absDir, 'inventory.img')),
    names.has('pstree.img') ? readPstree(join(absDir, 'pstree.img')) : undefined,
    readMemory(absDir, walked, pageSize),
    describeFiles(absDir, walked),
    readParent(absDir),
    readStatsFiles([options.workDir, absDir]),
  ]);

  const byPid = new Map(memory.flatMap((m) => (m.owner.kind === 'task' ? [[m.owner.pid, m] as const] : [])));
  const tasks: ImageTask[] = (pstree ?? []).map((t) => {
    const mem = byPid.get(t.pid);
    return mem ? { ...t, memory: mem } : { ...t };
  });
  const set: ImageSet = {
    dir: absDir,
    kind: pstree ? 'dump' : 'pre-dump',
    inventory,
    tasks,
    memory,
    totals: totalsOf(tasks, memory, walked),
    files,
    stats,
    pageSize,
  };
  if (parent) set.parent = parent;
  return set;
}

/** Bytes of all regular files in the directory, recursively, without following `parent` or any other symlink. */
export async function imageDirBytes(dir: string): Promise<number> {
  const walked = await walkImageDir(resolve(dir));
  return walked.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0);
}

async function readMemory(dir: string, walked: readonly WalkEntry[], pageSize: number): Promise<MemoryImage[]> {
  const sizes = new Map(walked.flatMap((e) => (e.type === 'file' ? [[e.path, e.size] as const] : [])));
  const pagemaps = walked.flatMap((e) => {
    const m = PAGEMAP_NAME.exec(e.path);
    if (!m || e.type !== 'file') return [];
    const owner: MemoryOwner = m[1] ? { kind: m[1] as 'shmem' | 'secretmem', id: m[2]! } : { kind: 'task', pid: Number(m[2]) };
    return [{ file: e.path, owner }];
  });
  const images = await Promise.all(
    pagemaps.map(async ({ file, owner }) => summarise(dir, file, owner, await readPagemap(join(dir, file)), sizes, pageSize)),
  );
  const rank = (m: MemoryImage) => ['task', 'shmem', 'secretmem'].indexOf(m.owner.kind);
  return images.sort((a, b) => rank(a) - rank(b) || ownerKey(a.owner) - ownerKey(b.owner));
}

function ownerKey(owner: MemoryOwner): number {
  return owner.kind === 'task' ? owner.pid : Number(owner.id);
}

function summarise(
  dir: string,
  pagemapFile: string,
  owner: MemoryOwner,
  pagemap: Pagemap,
  sizes: ReadonlyMap<string, number>,
  pageSize: number,
): MemoryImage {
  let presentPages = 0;
  let parentPages = 0;
  let lazyPages = 0;
  for (const range of pagemap.ranges) {
    if (range.flags & PE_FLAGS.PRESENT) presentPages += range.nrPages;
    else if (range.flags & PE_FLAGS.PARENT) parentPages += range.nrPages;
    // CRIU also sets LAZY on stored ranges (anonymous private memory that *could* be restored lazily).
    else if (range.flags & PE_FLAGS.LAZY) lazyPages += range.nrPages;
  }
  const pagesFile = `pages-${pagemap.pagesId}.img`;
  const pagesBytes = sizes.get(pagesFile);
  const expected = presentPages * pageSize;
  if (pagesBytes === undefined && presentPages > 0) {
    throw imageCorrupt(join(dir, pagesFile), `missing, but ${pagemapFile} says it holds ${presentPages} pages`);
  }
  if (pagesBytes !== undefined && pagesBytes !== expected) {
    throw imageCorrupt(
      join(dir, pagesFile),
      `is ${pagesBytes} bytes, but ${pagemapFile} says it holds ${presentPages} pages of ${pageSize} bytes (${expected})`,
      { pagesBytes, expectedBytes: expected },
    );
  }
  return { owner, pagemapFile, pagesId: pagemap.pagesId, pagesFile, presentPages, parentPages, lazyPages, pagesBytes: pagesBytes ?? 0 };
}

function totalsOf(tasks: readonly ImageTask[], memory: readonly MemoryImage[], walked: readonly WalkEntry[]): ImageSetTotals {
  const sum = <T>(items: readonly T[], f: (item: T) => number) => items.reduce((s, i) => s + f(i), 0);
  const regular = walked.flatMap((e) => (e.type === 'file' ? [e] : []));
  return {
    tasks: tasks.length,
    threads: sum(tasks, (t) => Math.max(t.threads.length, 1)),
    presentPages: sum(memory, (m) => m.presentPages),
    parentPages: sum(memory, (m) => m.parentPages),
    lazyPages: sum(memory, (m) => m.lazyPages),
    pagesBytes: sum(regular.filter((e) => PAGES_NAME.test(e.path)), (e) => e.size),
    files: regular.length,
    bytes: sum(regular, (e) => e.size),
  };
}

async function describeFiles(dir: string, walked: readonly WalkEntry[]): Promise<ImageFile[]> {
  return Promise.all(
    walked.map(async (e): Promise<ImageFile> => {
      if (e.type === 'symlink') return { name: e.path, type: 'symlink', bytes: 0, target: e.target };
      const file: ImageFile = { name: e.path, type: 'file', bytes: e.size };
      const imageType = PAGES_NAME.test(e.path) ? 'PAGES' : await headerType(join(dir, e.path));
      if (imageType) file.imageType = imageType;
      return file;
    }),
  );
}

async function headerType(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(8);
    const { bytesRead } = await handle.read(header, 0, 8, 0);
    return identifyImageHeader(header.subarray(0, bytesRead))?.name;
  } finally {
    await handle.close();
  }
}

async function readParent(dir: string): Promise<ParentImage | undefined> {
  const link = join(dir, 'parent');
  let target: string;
  try {
    target = await readlink(link);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'EINVAL')) return undefined; // EINVAL: `parent` is not a symlink
    throw err;
  }
  const path = resolve(dir, target);
  try {
    if ((await stat(path)).isDirectory()) return { target, path: await realpath(path), exists: true };
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
  }
  return { target, path, exists: false };
}

async function readStatsFiles(dirs: readonly (string | undefined)[]): Promise<ImageStats> {
  const [dump, restore] = await Promise.all([findStats(dirs, 'dump'), findStats(dirs, 'restore')]);
  const stats: ImageStats = {};
  if (dump.dump) stats.dump = dump.dump;
  if (restore.restore) stats.restore = restore.restore;
  return stats;
}

async function findStats(dirs: readonly (string | undefined)[], which: 'dump' | 'restore'): Promise<ImageStats> {
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      return await readStats(join(dir, `stats-${which}`));
    } catch (err) {
      if (!isFerryError(err, 'ERR_IMAGE_NOT_FOUND')) throw err;
    }
  }
  return {};
}
