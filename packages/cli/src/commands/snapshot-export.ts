/**
 * `ferry snapshot export CT SNAPSHOT FILE`: one snapshot as a checkpoint archive (Podman/checkpointctl layout), to
 * restore elsewhere with `ferry restore --import` or `podman container restore --import`. A snapshot that depends on
 * a parent (incremental, where memory tracking exists) is refused: the archive must stand alone.
 */
import type { Argv, CommandModule } from 'yargs';
import { archiveTools, DEFAULT_SNAPSHOT_ROOT, SnapshotStore, writeCheckpointArchive } from '@ferry/core';
import { runtimeRegistry } from '../host-context';
import { exportJson, renderExport } from '../render-archive';

interface ExportArgs {
  store: string;
  json: boolean;
  container: string;
  snapshot: string;
  file: string;
  'rootfs-image'?: string;
}

export const snapshotExportCommand: CommandModule<{ store: string; json: boolean }, ExportArgs> = {
  command: 'export <container> <snapshot> <file>',
  describe: 'Write a snapshot as a checkpoint archive (restore it with `ferry restore --import` or Podman)',
  builder: (y) =>
    (y as unknown as Argv<ExportArgs>)
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .positional('snapshot', { type: 'string', demandOption: true, describe: 'Snapshot id, its number, or "latest"' })
      .positional('file', { type: 'string', demandOption: true, describe: 'Archive to write' })
      .option('rootfs-image', { type: 'string', describe: 'The image Podman lays the rootfs over (default localhost/ferry-empty:latest)' }),
  handler: async (args) => {
    const store = new SnapshotStore({ registry: runtimeRegistry(), memTrack: async () => false, root: args.store ?? DEFAULT_SNAPSHOT_ROOT });
    const snapshot = await store.find(args.container, args.snapshot);
    const result = await writeCheckpointArchive({
      imagesDir: snapshot.dir,
      file: args.file,
      ...(args['rootfs-image'] === undefined ? {} : { rootfsImage: args['rootfs-image'] }),
      tools: archiveTools(process.env.PATH ?? ''),
    });
    process.stdout.write(
      args.json ? `${JSON.stringify({ event: 'snapshot-exported', container: args.container, id: snapshot.id, archive: exportJson(result) })}\n` : renderExport(result),
    );
  },
};
