import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { FerryError, imageDirBytes, recordedRuntime, statsIfWritten, type RuntimeName } from '@ferry/core';
import { runtimeRegistry } from '../host-context';
import { createProgress, renderRestore, restoreJson, type RestoreSummary } from '../render-checkpoint';
import { withInterrupt } from './interrupt';
import { restoreFromArchive } from './restore-import';

export interface RestoreArgs {
  dir?: string;
  name?: string;
  runtime?: RuntimeName;
  bundle?: string;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
  import?: string;
  rootfs?: string;
  'import-dir'?: string;
}

export const restoreCommand: CommandModule<object, RestoreArgs> = {
  command: 'restore [dir]',
  describe: 'Restore a container from an image directory (again and again: the images are not consumed)',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', describe: 'Image directory written by `ferry checkpoint` (or --import FILE)' })
      .option('name', { type: 'string', describe: 'Name of the restored container (default: the checkpointed one)' })
      .option('runtime', { choices: ['runc', 'lxc', 'docker', 'podman'] as const, describe: 'Runtime to restore with (default: the one that checkpointed, else runc)' })
      .option('bundle', { type: 'string', describe: 'Bundle to restore into (default: the one recorded at checkpoint)' })
      .option('tcp-established', { type: 'boolean', default: false })
      .option('file-locks', { type: 'boolean', default: true })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with the restored container and its stats' })
      .option('import', { type: 'string', describe: 'Restore a checkpoint archive (Podman `checkpoint --export`, ferry `--export`) as a runc container' })
      .option('rootfs', { type: 'string', describe: 'With --import: the base root filesystem rootfs-diff.tar applies to (default: Podman\'s copy of the image)' })
      .option('import-dir', { type: 'string', describe: 'With --import: where the bundle and images go (default /var/lib/ferry/imports/NAME-TIME)' }),
  handler: async (args) => {
    if (args.import !== undefined) return restoreFromArchive({ ...args, import: args.import });
    if (args.dir === undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'name the image directory to restore, or a checkpoint archive with --import FILE', {
        hint: 'ferry restore DIR | ferry restore --import FILE',
      });
    }
    const registry = runtimeRegistry();
    const imagesDir = resolve(args.dir);
    const runtime = args.runtime ?? recordedRuntime(imagesDir) ?? 'runc';
    const adapter = registry.get(runtime);
    const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    progress.start(`restoring ${args.name ? `${runtime}:${args.name}` : 'the container'} from ${imagesDir}`);
    let ok = false;
    try {
      // Measured before the restore: what is restored from, without the logs this restore adds.
      const imageBytes = await imageDirBytes(imagesDir).catch(() => 0);
      const started = Date.now();
      const result = await withInterrupt((signal) =>
        adapter.restore({
          imagesDir,
          name: args.name,
          bundle: args.bundle,
          tcpEstablished: args['tcp-established'],
          fileLocks: args['file-locks'],
          signal,
        }),
      );
      ok = true;
      progress.end(true);
      const summary: RestoreSummary = { container: result.container, imagesDir, restoreMs: result.restoreMs, imageBytes };
      // CRIU writes its statistics into the work dir, which is the images dir here; an older stats-restore is
      // another restore's.
      const criu = await statsIfWritten(join(imagesDir, 'stats-restore'), started);
      if (criu?.restore) summary.criu = criu.restore;
      const dump = (await statsIfWritten(join(imagesDir, 'stats-dump'), 0))?.dump;
      if (dump) {
        summary.checkpoint = { frozenMs: dump.frozenMs, memdumpMs: dump.memdumpMs, memwriteMs: dump.memwriteMs, pagesWritten: dump.pagesWritten };
      }
      process.stdout.write(args.json ? restoreJson(summary) : renderRestore(summary));
    } finally {
      if (!ok) progress.end(false);
    }
  },
};
