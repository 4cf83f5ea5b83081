import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { assertExportable, assertExportTarget, checkNewDirectory } from '@ferry/core';
import { runtimeRegistry, stateDir } from '../host-context';
import { checkpointJson, createProgress, renderCheckpoint } from '../render-checkpoint';
import { exportAfterCheckpoint } from './checkpoint-export';
import { withInterrupt } from './interrupt';

export interface CheckpointArgs {
  container: string;
  dir?: string;
  'allow-existing-dir': boolean;
  'leave-running': boolean;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
  export?: string;
  'rootfs-image'?: string;
}

export const checkpointCommand: CommandModule<object, CheckpointArgs> = {
  command: 'checkpoint <container>',
  describe: 'Checkpoint a container into an image directory (0700)',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .option('dir', { type: 'string', describe: 'Image directory, new or empty (default /var/lib/ferry/checkpoints/NAME-TIME)' })
      .option('allow-existing-dir', { type: 'boolean', default: false, describe: 'Write into a --dir that is not empty or is a symlink' })
      .option('leave-running', { type: 'boolean', default: false, describe: 'Keep the container running after the checkpoint' })
      .option('tcp-established', { type: 'boolean', default: false, describe: 'Checkpoint established TCP connections' })
      .option('file-locks', { type: 'boolean', default: true })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with the result and its stats' })
      .option('export', { type: 'string', describe: 'Also write a checkpoint archive (Podman/checkpointctl layout) to FILE (runc and Podman containers)' })
      .option('rootfs-image', { type: 'string', describe: 'With --export of a runc container: the image Podman lays the rootfs over (default localhost/ferry-empty:latest); a Podman container\'s archive names its own image' }),
  handler: async (args) => {
    // Checked before anything else: a planted link or an earlier checkpoint in the way is refused, not written into.
    const chosen = args.dir === undefined ? undefined : checkNewDirectory(args.dir, '--dir', '--allow-existing-dir', args['allow-existing-dir']);
    const registry = runtimeRegistry();
    const { adapter, container } = await registry.findContainer(args.container);
    if (args.export !== undefined) {
      assertExportable(container.ref.runtime);
      assertExportTarget(args.export);
    }
    const dir = chosen ?? resolve(stateDir(), `checkpoints/${container.ref.id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    progress.start(`checkpointing ${container.ref.runtime}:${container.ref.id} into ${dir}`);
    let ok = false;
    try {
      const result = await withInterrupt((signal) =>
        adapter.checkpoint(container.ref, {
          imagesDir: dir,
          leaveRunning: args['leave-running'],
          tcpEstablished: args['tcp-established'],
          fileLocks: args['file-locks'],
          signal,
        }),
      );
      ok = true;
      progress.end(true);
      const summary = { container: result.container, imagesDir: result.imagesDir, leaveRunning: args['leave-running'], stats: result.stats };
      if (args.export !== undefined) {
        await exportAfterCheckpoint({ summary, file: args.export, rootfsImage: args['rootfs-image'], keepDir: args.dir !== undefined, json: args.json });
        return;
      }
      process.stdout.write(args.json ? checkpointJson(summary) : renderCheckpoint(summary));
    } finally {
      if (!ok) progress.end(false);
    }
  },
};
