export { createImageDir, privateImageFiles } from './image-dir';
export { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, IMAGE_KINDS, identifyImageHeader, type ImageKind, type MagicSet } from './image-magic';
export {
  readImageEntries,
  decodeImage,
  encodeImage,
  type ImageSpec,
  type ImageEntry,
  type ImageContents,
  type WireObject,
} from './image-file';
export { PE_FLAGS, INVENTORY_IMAGE, PSTREE_IMAGE, PAGEMAP_IMAGE, STATS_IMAGE } from './image-schema';
export {
  readInventory,
  readPstree,
  readPagemap,
  prepareImageDecoders,
  readVmaBounds,
  readStats,
  statsIfWritten,
  type InventoryInfo,
  type PstreeTask,
  type Pagemap,
  type PagemapRange,
  type DumpStats,
  type RestoreStats,
  type ImageStats,
} from './image-records';
export {
  readImageSet,
  imageDirBytes,
  DEFAULT_PAGE_SIZE,
  type ImageSet,
  type ImageTask,
  type ImageFile,
  type ImageSetTotals,
  type MemoryImage,
  type MemoryOwner,
  type ParentImage,
  type ReadImageSetOptions,
} from './image-set';
export {
  computeManifest,
  verifyManifest,
  sha256File,
  MANIFEST_VERSION,
  type ImageManifest,
  type ManifestEntry,
  type ManifestMismatch,
  type ManifestOptions,
  type MismatchKind,
} from './manifest';
export * from './lazy-to-parent';
export * from './pagemap-writer';
