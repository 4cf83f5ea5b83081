import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { imageDirBytes, isCheckpointArchive, startCopiesFromImage, type RuntimeName, type StartedContainer } from '@ferry/core';
import { runtimeRegistry } from '../host-context';
import { createProgress } from '../render-checkpoint';
import { renderStart, startJson } from '../render-snapshot';
import { withImportedArchive } from './archive-import';
import { withInterrupt } from './interrupt';

export interface StartArgs {
  from: string;
  name?: string;
  count: number;
  'name-prefix'?: string;
  runtime: RuntimeName;
  'tcp-established'?: boolean;
  'file-locks'?: boolean;
  'work-root'?: string;
  json: boolean;
  rootfs?: string;
  'import-dir'?: string;
}

/**
 * `ferry start --from IMAGE`: `ferry restore` for the "boot once, start many times" use (a slow-starting service
 * checkpointed once it is ready). Same adapter call; it differs in that the image is only read (CRIU's logs go to a
 * private work directory), it starts N numbered copies, and a copy whose recorded network namespace is taken gets
 * its own.
 */
export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: 'Start containers from a checkpoint image instead of booting them (the image is only read)',
  builder: (y) =>
    y
      .option('from', { type: 'string', demandOption: true, describe: 'Image directory (from `ferry checkpoint` or a snapshot), or a checkpoint archive file' })
      .option('rootfs', { type: 'string', describe: 'With an archive: the base root filesystem its rootfs-diff.tar applies to' })
      .option('import-dir', { type: 'string', describe: 'With an archive: where its bundle and images go (default /var/lib/ferry/imports/NAME-TIME)' })
      .option('name', { type: 'string', describe: 'Name of the container (default: the checkpointed one)' })
      .option('count', { type: 'number', default: 1, describe: 'How many copies to start (named PREFIX-1 ... PREFIX-N)' })
      .option('name-prefix', { type: 'string', describe: 'Prefix of the copies\' names (default: the checkpointed name)' })
      .option('runtime', { choices: ['runc'] as const, default: 'runc' as const })
      .option('tcp-established', { type: 'boolean', describe: 'Restore established TCP connections (default: as checkpointed)' })
      .option('file-locks', { type: 'boolean', describe: 'Restore file locks (default: as checkpointed)' })
      .option('work-root', { type: 'string', hidden: true, describe: 'Parent of the per-start work directories (tests)' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with every started container' })
      .check((a) => {
        if (!Number.isInteger(a.count) || a.count < 1) throw new Error('--count must be a whole number >= 1');
        return true;
      }),
  handler: async (args) => {
    if (!isCheckpointArchive(args.from)) return startFromDir(args, resolve(args.from));
    // An archive: imported once into a bundle every copy starts from; removed again if no copy starts.
    const importArgs = { file: args.from, ...(args['import-dir'] === undefined ? {} : { dir: args['import-dir'] }), ...(args.rootfs === undefined ? {} : { rootfs: args.rootfs }) };
    await withImportedArchive(importArgs, (prepared) => startFromDir(args, prepared.imagesDir));
  },
};

async function startFromDir(args: StartArgs, imagesDir: string): Promise<void> {
  {
    const adapter = runtimeRegistry().get(args.runtime);
    const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    const imageBytes = await imageDirBytes(imagesDir).catch(() => 0);
    progress.start(`starting ${args.count > 1 ? `${args.count} containers` : 'a container'} from ${imagesDir}`);
    let ok = false;
    try {
      const started = Date.now();
      const containers: StartedContainer[] = await withInterrupt((signal) =>
        startCopiesFromImage(adapter, {
          imagesDir,
          count: args.count,
          ...(args.name === undefined ? {} : { name: args.name }),
          ...(args['name-prefix'] === undefined ? {} : { namePrefix: args['name-prefix'] }),
          ...(args['tcp-established'] === undefined ? {} : { tcpEstablished: args['tcp-established'] }),
          ...(args['file-locks'] === undefined ? {} : { fileLocks: args['file-locks'] }),
          ...(args['work-root'] === undefined ? {} : { workRoot: args['work-root'] }),
          signal,
        }),
      );
      ok = true;
      progress.end(true);
      const summary = { imagesDir, imageBytes, started: containers, totalMs: Date.now() - started };
      process.stdout.write(args.json ? startJson(summary) : renderStart(summary));
    } finally {
      if (!ok) progress.end(false);
    }
  }
}
