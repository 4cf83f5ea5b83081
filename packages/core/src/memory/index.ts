/**
 * Reading a process's memory on this host, for hash-based pre-copy and the final round: the container's tasks, the
 * pages worth reading (/proc/PID/maps and pagemap), process_vm_readv into page-aligned buffers, page hashes, and
 * scattering received pages into image files. The primitives are @ferry/native's; migrate takes them from here, so
 * that only core reaches into the native addon.
 */
export { containerTasks, namespacePid, presentPrivateRanges, worthReading, type ContainerTask } from './container-tasks';
export {
  PAGE_SIZE,
  allocPageAligned,
  findPresentRanges,
  gatherFiles,
  hashPages,
  listMemoryRegions,
  parseMaps,
  readMemory,
  scatterFiles,
  type FdRange,
  type MemoryRange,
  type MemoryReadResult,
  type MemoryRegion,
  type PageHashes,
  type ReadMemoryOptions,
} from '@ferry/native';
