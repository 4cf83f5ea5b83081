import { homedir } from 'node:os';
import type { CommandModule } from 'yargs';
import { parseFaults, resolveDestination, type RequestedStrategy } from '@ferry/migrate';
import { recoverInterrupted } from '../guarded-run';
import { limitOptions, limitsFromArgs, type LimitArgs } from '../move-limits';
import { runMove } from '../run-move';
import { guardedSsh, migrationDeps } from '../migration-deps';
import { createEventRenderer } from '../render-events';
import { renderReport } from '../render-report';

export interface MigrateArgs extends LimitArgs {
  container: string;
  to: string;
  strategy: RequestedStrategy;
  json: boolean;
  'tcp-established': boolean;
  'file-locks': boolean;
  'ext-unix-sk': boolean;
  'shared-storage': boolean;
  'lazy-restore'?: boolean;
  'accept-new-host-key': boolean;
  'hosts-file'?: string[];
  'agent-command'?: string;
}

export const migrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate <container>',
  describe: 'Move a running container to another host',
  builder: (y) =>
    limitOptions(y)
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .option('to', { type: 'string', demandOption: true, describe: 'Destination: NAME from the hosts file or ~/.ssh/config, or USER@ADDRESS[:PORT]' })
      .option('strategy', { choices: ['auto', 'stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'] as const, default: 'auto' as const })
      .option('tcp-established', { type: 'boolean', default: true, describe: 'Keep established TCP connections' })
      .option('file-locks', { type: 'boolean', default: true })
      .option('ext-unix-sk', { type: 'boolean', default: false, describe: 'Allow unix datagram sockets to outside' })
      .option('shared-storage', { type: 'boolean', default: false, describe: 'The bundle is on storage both hosts share: do not copy it' })
      .option('lazy-restore', { type: 'boolean', describe: 'hash-pre-copy: restore without writing memory while frozen; the copy fills from pages the destination holds (auto does where it can; --no-lazy-restore: never)' })
      .option('accept-new-host-key', { type: 'boolean', default: false, describe: 'Trust and record the key of a host never seen before' })
      .option('hosts-file', { type: 'string', array: true, describe: 'Hosts files to read (default /etc/ferry/hosts.yaml, ~/.config/ferry/hosts.yaml)' })
      .option('agent-command', { type: 'string', hidden: true, describe: 'The agent command on the destination (tests)' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per event and a final report' }),
  handler: async (args) => {
    const limits = limitsFromArgs(args);
    const destination = resolveDestination(args.to, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
    const render = createEventRenderer({ json: args.json, tty: process.stderr.isTTY === true, write: (text) => process.stderr.write(text) });
    const deps = migrationDeps(args);
    await recoverInterrupted(deps, (message) => render({ type: 'warning', message }));
    await runMove({
      move: {
        request: {
          container: args.container,
          destination,
          strategy: args.strategy,
          tcpEstablished: args['tcp-established'],
          fileLocks: args['file-locks'],
          extUnixSk: args['ext-unix-sk'],
          sharedStorage: args['shared-storage'],
          ...(args['lazy-restore'] !== undefined ? { lazyRestore: args['lazy-restore'] } : {}),
          faults: parseFaults(process.env.FERRY_FAULT),
          ...limits,
        },
        ssh: guardedSsh(args),
      },
      deps,
      dryRun: args['dry-run'],
      json: args.json,
      render,
      renderReport: (report) => renderReport(report),
    });
  },
};
