/**
 * The CRIU image messages ferry reads (images/inventory.proto, pstree.proto, pagemap.proto, stats.proto), declared
 * with protobufjs reflection from the documented field numbers. Only useful fields are declared; the decoder skips
 * the others. `required` is declared where CRIU's proto says so: protobufjs's decoder rejects an entry that lacks one.
 */
import { protoMessage, protoRoot, type FieldSpec } from '../criu/proto-message';
import type { ImageSpec } from './image-file';
import { IMAGE_KINDS } from './image-magic';


/** pagemap_entry.flags bits. */
export const PE_FLAGS = {
  /** The pages are in the parent image (pre-dump chain), not in this directory. */
  PARENT: 1 << 0,
  /** The pages may be restored lazily (post-copy), served by a page server. */
  LAZY: 1 << 1,
  /** The pages are stored in this directory's pages-N.img. */
  PRESENT: 1 << 2,
} as const;

export const LSM_TYPES = ['none', 'selinux', 'apparmor'] as const;

const INVENTORY_FIELDS: readonly FieldSpec[] = [
  ['img_version', 1, 'uint32', 'required'],
  ['fdinfo_per_id', 2, 'bool'],
  // 3 is root_ids (task_kobj_ids_entry): not needed.
  ['ns_per_id', 4, 'bool'],
  ['root_cg_set', 5, 'uint32'],
  ['lsmtype', 6, 'int32'], // an enum on the wire: NO_LSM = 0, SELINUX = 1, APPARMOR = 2
  ['dump_uptime', 8, 'uint64'],
  ['pre_dump_mode', 9, 'uint32'],
  ['tcp_close', 10, 'bool'],
  ['network_lock_method', 11, 'uint32'],
  // 12 is plugins (plugins_entry): not needed.
  ['dump_criu_run_id', 13, 'string'],
];

const PSTREE_FIELDS: readonly FieldSpec[] = [
  ['pid', 1, 'uint32', 'required'],
  ['ppid', 2, 'uint32', 'required'],
  ['pgid', 3, 'uint32', 'required'],
  ['sid', 4, 'uint32', 'required'],
  ['threads', 5, 'uint32', 'repeated'],
];

const PAGEMAP_FIELDS: readonly FieldSpec[] = [
  ['vaddr', 1, 'uint64', 'required'],
  // CRIU 4 writes 0 here and the real count in nr_pages (5); older CRIU only wrote this one.
  ['compat_nr_pages', 2, 'uint32', 'required'],
  ['in_parent', 3, 'bool'], // before flags existed
  ['flags', 4, 'uint32'],
  ['nr_pages', 5, 'uint64'],
];

const DUMP_STATS_FIELDS: readonly FieldSpec[] = [
  ['freezing_time', 1, 'uint32', 'required'],
  ['frozen_time', 2, 'uint32', 'required'],
  ['memdump_time', 3, 'uint32', 'required'],
  ['memwrite_time', 4, 'uint32', 'required'],
  ['pages_scanned', 5, 'uint64', 'required'],
  ['pages_skipped_parent', 6, 'uint64', 'required'],
  ['pages_written', 7, 'uint64', 'required'],
  ['irmap_resolve', 8, 'uint32'],
  ['pages_lazy', 9, 'uint64', 'required'],
  ['page_pipes', 10, 'uint64'],
  ['page_pipe_bufs', 11, 'uint64'],
  ['shpages_scanned', 12, 'uint64'],
  ['shpages_skipped_parent', 13, 'uint64'],
  ['shpages_written', 14, 'uint64'],
];

const RESTORE_STATS_FIELDS: readonly FieldSpec[] = [
  ['pages_compared', 1, 'uint64', 'required'],
  ['pages_skipped_cow', 2, 'uint64', 'required'],
  ['forking_time', 3, 'uint32', 'required'],
  ['restore_time', 4, 'uint32', 'required'],
  ['pages_restored', 5, 'uint64'],
];


const root = protoRoot([
  protoMessage('inventory_entry', INVENTORY_FIELDS),
  protoMessage('pstree_entry', PSTREE_FIELDS),
  protoMessage('pagemap_head', [['pages_id', 1, 'uint32', 'required']]),
  protoMessage('pagemap_entry', PAGEMAP_FIELDS),
  protoMessage('dump_stats_entry', DUMP_STATS_FIELDS),
  protoMessage('restore_stats_entry', RESTORE_STATS_FIELDS),
  protoMessage('stats_entry', [['dump', 1, 'dump_stats_entry'], ['restore', 2, 'restore_stats_entry']]),
  // mm.proto / vma.proto: only the VMAs' bounds (a lazy-pages handler copies within one VMA at a time).
  protoMessage('vma_entry', [['start', 1, 'uint64', 'required'], ['end', 2, 'uint64', 'required']]),
  protoMessage('mm_entry', [['vmas', 14, 'vma_entry', 'repeated']]),
]);
export const InventoryEntry = root.lookupType('inventory_entry');
export const PstreeEntry = root.lookupType('pstree_entry');
export const PagemapHead = root.lookupType('pagemap_head');
export const PagemapEntry = root.lookupType('pagemap_entry');
export const StatsEntry = root.lookupType('stats_entry');
export const MmEntry = root.lookupType('mm_entry');

export const INVENTORY_IMAGE: ImageSpec = { kind: IMAGE_KINDS.inventory, entry: InventoryEntry };
export const PSTREE_IMAGE: ImageSpec = { kind: IMAGE_KINDS.pstree, entry: PstreeEntry };
/** Task pagemaps (pagemap-PID.img) and shared-memory pagemaps (pagemap-shmem-ID.img) alike. */
export const PAGEMAP_IMAGE: ImageSpec = { kind: IMAGE_KINDS.pagemap, head: PagemapHead, entry: PagemapEntry };
/** mm-PID.img: a task's address space. */
export const MM_IMAGE: ImageSpec = { kind: IMAGE_KINDS.mm, entry: MmEntry };
/** stats-dump and stats-restore (no .img suffix), written into CRIU's work directory. */
export const STATS_IMAGE: ImageSpec = { kind: IMAGE_KINDS.stats, entry: StatsEntry };
