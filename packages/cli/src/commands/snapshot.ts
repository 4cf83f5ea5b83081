import type { Argv, CommandModule } from 'yargs';
import { existsSync, realpathSync } from 'node:fs';
import { DEFAULT_SNAPSHOT_ROOT, FerryError, SnapshotStore } from '@ferry/core';
import { criuClient, runtimeRegistry } from '../host-context';
import { createProgress } from '../render-checkpoint';
import {
  renderRevert,
  renderSnapshotList,
  renderSnapshotRemoved,
  renderSnapshotTaken,
  revertJson,
  snapshotListJson,
  snapshotTakenJson,
} from '../render-snapshot';
import { withInterrupt } from './interrupt';
import { snapshotExportCommand } from './snapshot-export';

interface CommonArgs {
  store: string;
  'adopt-store': boolean;
  json: boolean;
}

interface TakeArgs extends CommonArgs {
  container: string;
  'tcp-established': boolean;
  'file-locks': boolean;
}

interface ListArgs extends CommonArgs {
  container: string;
}

interface SnapshotArgs extends CommonArgs {
  container: string;
  snapshot: string;
}

function store(args: CommonArgs): SnapshotStore {
  if (args.store.trim() === '') {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', '--store is empty', { hint: `Name a directory, or leave --store out for ${DEFAULT_SNAPSHOT_ROOT}.` });
  }
  // --adopt-store also means "follow the link": the store is then where it points.
  const root = args['adopt-store'] && existsSync(args.store) ? realpathSync(args.store) : args.store;
  return new SnapshotStore({
    registry: runtimeRegistry(),
    memTrack: async () => (await criuClient().features()).memTrack,
    root,
    adoptRoot: args['adopt-store'],
  });
}

function progressFor(args: CommonArgs) {
  return createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
}

const containerPositional = <T>(y: Argv<T>) =>
  y.positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' });

const takeCommand: CommandModule<CommonArgs, TakeArgs> = {
  command: ['take <container>', '$0 <container>'],
  describe: 'Take a snapshot (checkpoint --leave-running into the store); `ferry snapshot CT` for short',
  builder: (y) =>
    containerPositional(y)
      .option('tcp-established', { type: 'boolean', default: false, describe: 'Include established TCP connections' })
      .option('file-locks', { type: 'boolean', default: true }) as unknown as Argv<TakeArgs>,
  handler: async (args) => {
    const progress = progressFor(args);
    progress.start(`taking a snapshot of ${args.container}`);
    let ok = false;
    try {
      const taken = await withInterrupt((signal) =>
        store(args).take(args.container, { tcpEstablished: args['tcp-established'], fileLocks: args['file-locks'], signal }),
      );
      ok = true;
      progress.end(true);
      process.stdout.write(args.json ? snapshotTakenJson(taken) : renderSnapshotTaken(taken));
    } finally {
      if (!ok) progress.end(false);
    }
  },
};

const listCommand: CommandModule<CommonArgs, ListArgs> = {
  command: ['ls <container>', 'list <container>'],
  describe: 'List the snapshots of a container, with the disk each one uses and the total',
  builder: (y) => containerPositional(y) as unknown as Argv<ListArgs>,
  handler: async (args) => {
    const listing = await store(args).list(args.container);
    process.stdout.write(args.json ? snapshotListJson(listing) : renderSnapshotList(listing));
  },
};

const snapshotPositional = <T>(y: Argv<T>) =>
  containerPositional(y).positional('snapshot', { type: 'string', demandOption: true, describe: 'Snapshot id, its number, or "latest"' });

const revertCommand: CommandModule<CommonArgs, SnapshotArgs> = {
  command: 'revert <container> <snapshot>',
  describe: 'Stop the container and restore the snapshot under the same name (the current state is lost)',
  builder: (y) => snapshotPositional(y) as unknown as Argv<SnapshotArgs>,
  handler: async (args) => {
    const progress = progressFor(args);
    progress.start(`reverting ${args.container} to snapshot ${args.snapshot}`);
    let ok = false;
    try {
      const result = await withInterrupt((signal) => store(args).revert(args.container, args.snapshot, { signal }));
      ok = true;
      progress.end(true);
      process.stdout.write(args.json ? revertJson(result) : renderRevert(result));
    } finally {
      if (!ok) progress.end(false);
    }
  },
};

const removeCommand: CommandModule<CommonArgs, SnapshotArgs> = {
  command: ['rm <container> <snapshot>', 'remove <container> <snapshot>'],
  describe: 'Delete a snapshot (refused while a newer incremental snapshot needs it)',
  builder: (y) => snapshotPositional(y) as unknown as Argv<SnapshotArgs>,
  handler: async (args) => {
    const removed = await store(args).remove(args.container, args.snapshot);
    process.stdout.write(
      args.json
        ? `${JSON.stringify({ event: 'snapshot-removed', container: args.container, id: removed.id, dir: removed.dir, diskBytes: removed.diskBytes })}\n`
        : renderSnapshotRemoved(args.container, removed),
    );
  },
};

export const snapshotCommand: CommandModule<object, CommonArgs> = {
  command: 'snapshot',
  describe: 'Snapshots of a running container on this host: take one, list them, revert to one, remove one',
  builder: (y) =>
    y
      .usage('$0 snapshot <container> | take <container> | ls <container> | revert <container> <snapshot> | rm <container> <snapshot> | export <container> <snapshot> <file>')
      .option('store', { type: 'string', default: DEFAULT_SNAPSHOT_ROOT, describe: 'Where snapshots are kept (0700; new, empty, or a store)' })
      .option('adopt-store', { type: 'boolean', default: false, describe: 'Use a --store that is not empty (or is a symlink) as a snapshot store' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with the result' })
      .command(takeCommand as CommandModule<CommonArgs, TakeArgs>)
      .command(listCommand)
      .command(revertCommand)
      .command(removeCommand)
      .command(snapshotExportCommand as unknown as CommandModule<CommonArgs, object>)
      .demandCommand(1, 'Name a container, or a snapshot command (ls, revert, rm).') as unknown as Argv<CommonArgs>,
  handler: () => undefined,
};
