/**
 * Writes small but well-formed CRIU image directories for tests that need one without running CRIU (the image
 * model's own tests, and transfer tests elsewhere). Encoded with the same schema the reader uses.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeImage, type WireObject } from './image-file';
import { INVENTORY_IMAGE, PAGEMAP_IMAGE, PE_FLAGS, PSTREE_IMAGE, STATS_IMAGE } from './image-schema';

export interface SyntheticRange {
  nrPages: number;
  /** PE_FLAGS bits; PRESENT by default. */
  flags?: number;
}

export interface SyntheticTask {
  pid: number;
  ppid?: number;
  threads?: number[];
  /** No pagemap at all when undefined (like a zombie). */
  ranges?: SyntheticRange[];
}

export interface SyntheticImageDir {
  tasks: SyntheticTask[];
  shmem?: { id: number; ranges: SyntheticRange[] }[];
  /** Leave out pstree.img, as pre-dump does. */
  preDump?: boolean;
  dumpStats?: WireObject;
  restoreStats?: WireObject;
  /** Target of a `parent` symlink. */
  parent?: string;
  pageSize?: number;
}

const BASE_VADDR = 0x400000n;

/** Writes the directory (created if needed); pages files are filled with a pattern derived from the pages id. */
export async function writeSyntheticImageDir(dir: string, spec: SyntheticImageDir): Promise<void> {
  const pageSize = spec.pageSize ?? 4096;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'inventory.img'), encodeImage(INVENTORY_IMAGE, [{ img_version: 2, fdinfo_per_id: true, ns_per_id: true }]));
  if (!spec.preDump) {
    const entries = spec.tasks.map((t) => ({ pid: t.pid, ppid: t.ppid ?? 0, pgid: t.pid, sid: t.pid, threads: t.threads ?? [t.pid] }));
    await writeFile(join(dir, 'pstree.img'), encodeImage(PSTREE_IMAGE, entries));
  }
  let pagesId = 0;
  const writeMemory = async (name: string, ranges: readonly SyntheticRange[]) => {
    pagesId += 1;
    let vaddr = BASE_VADDR;
    const entries = ranges.map((r) => {
      const entry = { vaddr: vaddr.toString(), compat_nr_pages: 0, nr_pages: r.nrPages, flags: r.flags ?? PE_FLAGS.PRESENT };
      vaddr += BigInt(r.nrPages * pageSize);
      return entry;
    });
    await writeFile(join(dir, name), encodeImage(PAGEMAP_IMAGE, entries, { head: { pages_id: pagesId } }));
    const present = ranges.reduce((n, r) => n + ((r.flags ?? PE_FLAGS.PRESENT) & PE_FLAGS.PRESENT ? r.nrPages : 0), 0);
    await writeFile(join(dir, `pages-${pagesId}.img`), Buffer.alloc(present * pageSize, pagesId));
  };
  for (const task of spec.tasks) if (task.ranges) await writeMemory(`pagemap-${task.pid}.img`, task.ranges);
  for (const seg of spec.shmem ?? []) await writeMemory(`pagemap-shmem-${seg.id}.img`, seg.ranges);
  if (spec.dumpStats) await writeFile(join(dir, 'stats-dump'), encodeImage(STATS_IMAGE, [{ dump: spec.dumpStats }]));
  if (spec.restoreStats) await writeFile(join(dir, 'stats-restore'), encodeImage(STATS_IMAGE, [{ restore: spec.restoreStats }]));
  if (spec.parent) await symlink(spec.parent, join(dir, 'parent'));
}

/** A complete dump_stats_entry (all required fields), times in microseconds as CRIU writes them. */
export function dumpStatsEntry(overrides: WireObject = {}): WireObject {
  return {
    freezing_time: 100,
    frozen_time: 48_818,
    memdump_time: 41_807,
    memwrite_time: 40_387,
    pages_scanned: 8222,
    pages_skipped_parent: 0,
    pages_written: 8215,
    pages_lazy: 0,
    ...overrides,
  };
}
