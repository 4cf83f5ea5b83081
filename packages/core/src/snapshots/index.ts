/** Starting containers from checkpoint images, and snapshots to go back to (issue 9). */
export * from './snapshot-names';
export * from './snapshot-kind';
export * from './disk-usage';
export * from './start-from-image';
export * from './snapshot-store';
