import { homedir } from 'node:os';
import type { CommandModule } from 'yargs';
import { migrationDeps } from '../migration-deps';
import { withInterrupt } from './interrupt';
import { migrateContainer, resolveDestination, type RequestedStrategy } from '@ferry/migrate';
import { assertNoSharedStorageLocks } from '@ferry/core';
import { createEventRenderer } from '../render-events';
import { renderReport } from '../render-report';

export interface MigrateArgs {
  container: string;
  to: string;
  strategy: RequestedStrategy;
  json: boolean;
  'tcp-established': boolean;
  'file-locks': boolean;
  'ext-unix-sk': boolean;
  'shared-storage': boolean;
  'accept-new-host-key': boolean;
  'hosts-file'?: string[];
  'agent-command'?: string;
}

export const migrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate <container>',
  describe: 'Move a running container to another host',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .option('to', { type: 'string', demandOption: true, describe: 'Destination: NAME from the hosts file or ~/.ssh/config, or USER@ADDRESS[:PORT]' })
      .option('strategy', { choices: ['auto', 'stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'] as const, default: 'auto' as const })
      .option('tcp-established', { type: 'boolean', default: true, describe: 'Keep established TCP connections' })
      .option('file-locks', { type: 'boolean', default: true })
      .option('ext-unix-sk', { type: 'boolean', default: false, describe: 'Allow unix datagram sockets to outside' })
      .option('shared-storage', { type: 'boolean', default: false, describe: 'The bundle is on storage both hosts share: do not copy it' })
      .option('accept-new-host-key', { type: 'boolean', default: false, describe: 'Trust and record the key of a host never seen before' })
      .option('hosts-file', { type: 'string', array: true, describe: 'Hosts files to read (default /etc/ferry/hosts.yaml, ~/.config/ferry/hosts.yaml)' })
      .option('agent-command', { type: 'string', hidden: true, describe: 'The agent command on the destination (tests)' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per event and a final report' }),
  handler: async (args) => {
    const destination = resolveDestination(args.to, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
    const render = createEventRenderer({ json: args.json, tty: process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    await withInterrupt(async (signal) => {
      const deps = migrationDeps(args);
      if (args['shared-storage'] && args['file-locks']) {
        // Before anything is frozen: a lock the source keeps while frozen would hang the destination's restore.
        assertNoSharedStorageLocks((await deps.findContainer(args.container)).container);
      }
      const report = await migrateContainer(
        {
          container: args.container,
          destination,
          strategy: args.strategy,
          tcpEstablished: args['tcp-established'],
          fileLocks: args['file-locks'],
          extUnixSk: args['ext-unix-sk'],
          sharedStorage: args['shared-storage'],
          onEvent: render,
          signal,
        },
        deps,
      );
      process.stdout.write(args.json ? `${JSON.stringify({ event: 'report', report })}\n` : renderReport(report));
    });
  },
};
