import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { runtimeRegistry } from '../host-context';
import { formatBytes } from '../render-events';

export interface CheckpointArgs {
  container: string;
  dir?: string;
  'leave-running': boolean;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
}

export const checkpointCommand: CommandModule<object, CheckpointArgs> = {
  command: 'checkpoint <container>',
  describe: 'Checkpoint a container into an image directory (0700)',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .option('dir', { type: 'string', describe: 'Image directory (default /var/lib/ferry/checkpoints/NAME-TIME)' })
      .option('leave-running', { type: 'boolean', default: false, describe: 'Keep the container running after the checkpoint' })
      .option('tcp-established', { type: 'boolean', default: false, describe: 'Checkpoint established TCP connections' })
      .option('file-locks', { type: 'boolean', default: true })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const registry = runtimeRegistry();
    const { adapter, container } = await registry.findContainer(args.container);
    const dir = resolve(args.dir ?? `/var/lib/ferry/checkpoints/${container.ref.id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const result = await adapter.checkpoint(container.ref, {
      imagesDir: dir,
      leaveRunning: args['leave-running'],
      tcpEstablished: args['tcp-established'],
      fileLocks: args['file-locks'],
    });
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ event: 'checkpoint', container: result.container.ref, imagesDir: result.imagesDir, stats: result.stats })}\n`);
      return;
    }
    const s = result.stats;
    process.stdout.write(
      [
        `checkpointed ${container.ref.runtime}:${container.ref.id} into ${result.imagesDir}`,
        `  frozen        ${s.frozenMs ?? '?'} ms`,
        `  memory dump   ${s.memdumpMs ?? '?'} ms (${s.pagesWritten ?? '?'} pages written)`,
        `  total         ${s.totalMs} ms`,
        `  image size    ${formatBytes(s.imageBytes)}`,
        args['leave-running'] ? '  the container keeps running' : '  the container was stopped',
      ].join('\n') + '\n',
    );
  },
};
