export { snapshotDir } from './snapshot-dir';
export { diffSnapshots, RACY_WINDOW_MS, type SnapshotDiff } from './diff-snapshots';
export { packDir, type PackOptions } from './pack-dir';
export { unpackDir, type UnpackOptions } from './unpack-dir';
export { TRANSFER_FORMAT } from './stream-format';
export type * from './transfer-types';
export { fileBytes, transferProgress, PROGRESS_EVERY_BYTES, PROGRESS_EVERY_MS, type ProgressReporter } from './progress-events';
