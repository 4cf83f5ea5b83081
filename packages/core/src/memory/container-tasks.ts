/**
 * The processes of a running container, as hash-based pre-copy reads them: every descendant of its init, with the
 * pid CRIU will name its images by (the pid inside the container's PID namespace), and the memory worth reading.
 */
import { readFile } from 'node:fs/promises';
import { findPresentRanges, listMemoryRegions, type MemoryRange, type MemoryRegion } from '@ferry/native';
import { readProcessTree } from '../session/proc-tree';

export interface ContainerTask {
  /** Pid on this host. */
  pid: number;
  /** Pid in the container's PID namespace: CRIU's pagemap-VPID.img. */
  vpid: number;
}

/** The innermost pid from /proc/PID/status's NSpid line; undefined when the process is gone. */
export async function namespacePid(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const line = status?.split('\n').find((l) => l.startsWith('NSpid:'));
  const ids = line?.slice(6).trim().split(/\s+/).map(Number);
  return ids && ids.length > 0 ? ids[ids.length - 1] : undefined;
}

/** Init and all its descendants (threads are not separate: they share their process's memory). */
export async function containerTasks(initPid: number): Promise<ContainerTask[]> {
  const tasks: ContainerTask[] = [];
  for (const { pid } of readProcessTree(initPid)) {
    const vpid = await namespacePid(pid);
    if (vpid !== undefined) tasks.push({ pid, vpid }); // else it exited meanwhile: nothing to copy
  }
  return tasks;
}

// Mappings CRIU never takes from the task's pages (the kernel provides them again on restore).
const KERNEL_MAPPINGS = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]', '[uprobes]']);

/**
 * Whether CRIU would dump this region's pages: private memory that can hold the process's own data. Shared memory
 * is dumped per segment (left to the final dump); read-only file mappings hold the file's pages, not the task's.
 */
export function worthReading(region: MemoryRegion): boolean {
  if (!region.readable || region.shared || KERNEL_MAPPINGS.has(region.pathname)) return false;
  const anonymous = region.pathname === '' || region.pathname.startsWith('[');
  return anonymous || region.writable;
}

/** The present (or swapped) pages of a task's private memory, as address ranges. */
export async function presentPrivateRanges(pid: number): Promise<MemoryRange[]> {
  const regions = await listMemoryRegions(pid);
  const out: MemoryRange[] = [];
  for (const region of regions) {
    if (!worthReading(region)) continue;
    out.push(...(await findPresentRanges(pid, { address: region.start, length: region.length })));
  }
  return out;
}
