export {
  CHECKPOINT_IMAGE_ANNOTATIONS,
  DEFAULT_ROOTFS_IMAGE,
  buildConfigDump,
  buildNetworkStatus,
  buildSpecDump,
  interfacesFromNetworkStatus,
  type ConfigDump,
  type NetworkStatus,
} from './archive-layout';
export { detectCompression, readArchive, writeArchive, type Compression } from './archive-tar';
export { assertExportable, assertExportTarget, writeCheckpointArchive, type ExportArchiveOptions, type ExportArchiveResult } from './export-archive';
export { prepareArchiveImport, type ImportArchiveOptions, type PreparedImport } from './import-archive';
export { archiveTools, isCheckpointArchive, type ArchiveTools } from './archive-file';
