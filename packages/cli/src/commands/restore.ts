import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import type { RuntimeName } from '@ferry/core';
import { runtimeRegistry } from '../host-context';

export interface RestoreArgs {
  dir: string;
  name?: string;
  runtime: RuntimeName;
  bundle?: string;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
}

export const restoreCommand: CommandModule<object, RestoreArgs> = {
  command: 'restore <dir>',
  describe: 'Restore a container from an image directory (again and again: the images are not consumed)',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'Image directory written by `ferry checkpoint`' })
      .option('name', { type: 'string', describe: 'Name of the restored container (default: the checkpointed one)' })
      .option('runtime', { choices: ['runc'] as const, default: 'runc' as const })
      .option('bundle', { type: 'string', describe: 'Bundle to restore into (default: the one recorded at checkpoint)' })
      .option('tcp-established', { type: 'boolean', default: false })
      .option('file-locks', { type: 'boolean', default: true })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const registry = runtimeRegistry();
    const result = await registry.get(args.runtime).restore({
      imagesDir: resolve(args.dir),
      name: args.name,
      bundle: args.bundle,
      tcpEstablished: args['tcp-established'],
      fileLocks: args['file-locks'],
    });
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ event: 'restore', container: result.container, restoreMs: result.restoreMs })}\n`);
      return;
    }
    process.stdout.write(`restored ${result.container.ref.runtime}:${result.container.ref.id} (pid ${result.container.pid ?? '?'}) in ${result.restoreMs} ms\n`);
  },
};
