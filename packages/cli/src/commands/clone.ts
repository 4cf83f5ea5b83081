import { homedir } from 'node:os';
import type { CommandModule } from 'yargs';
import { FerryError, assertContainerName } from '@ferry/core';
import { parseFaults, resolveDestination } from '@ferry/migrate';
import { recoverInterrupted, runGuarded } from '../guarded-run';
import { guardedSsh, migrationDeps } from '../migration-deps';
import { createEventRenderer } from '../render-events';
import { renderReport } from '../render-report';

export interface CloneArgs {
  container: string;
  to: string;
  name?: string;
  address?: string[];
  json: boolean;
  'hosts-file'?: string[];
  'accept-new-host-key': boolean;
  'agent-command'?: string;
}

export const cloneCommand: CommandModule<object, CloneArgs> = {
  command: 'clone <container>',
  describe: 'Copy a running container to another host; the original keeps running',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true, describe: 'Container name, or RUNTIME:NAME' })
      .option('to', { type: 'string', demandOption: true, describe: 'Destination host' })
      .option('name', { type: 'string', describe: 'Name of the copy (default: NAME-clone)' })
      .option('address', { type: 'string', array: true, describe: 'New address of the copy: IFNAME=CIDR (needed when the container has addresses)' })
      .option('hosts-file', { type: 'string', array: true })
      .option('accept-new-host-key', { type: 'boolean', default: false })
      .option('agent-command', { type: 'string', hidden: true })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    // Checked before connecting anywhere: the name ends up in paths on the destination.
    if (args.name !== undefined) assertContainerName(args.name, 'name for the clone');
    const readdress: Record<string, string> = {};
    for (const spec of args.address ?? []) {
      const m = /^([A-Za-z0-9_.-]+)=([0-9A-Fa-f:.]+\/\d{1,3})$/.exec(spec);
      if (!m) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--address ${spec} is not IFNAME=CIDR`, { hint: 'For example --address eth0=10.0.0.9/24.' });
      readdress[m[1]!] = m[2]!;
    }
    const destination = resolveDestination(args.to, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
    const base = args.container.includes(':') ? args.container.split(':')[1]! : args.container;
    const render = createEventRenderer({ json: args.json, tty: process.stderr.isTTY === true, write: (s) => process.stderr.write(s), verb: 'cloning' });
    const deps = migrationDeps(args);
    await recoverInterrupted(deps, (message) => render({ type: 'warning', message }));
    const report = await runGuarded({
      move: {
        request: {
          container: args.container,
          destination,
          strategy: 'auto',
          tcpEstablished: false,
          fileLocks: true,
          extUnixSk: false,
          sharedStorage: false,
          clone: { name: args.name ?? `${base}-clone`, readdress: Object.keys(readdress).length ? readdress : undefined },
          faults: parseFaults(process.env.FERRY_FAULT),
        },
        ssh: guardedSsh(args),
      },
      deps,
      onEvent: render,
      onNotice: (message) => render({ type: 'warning', message }),
      announce: args.json || process.stderr.isTTY === true,
    });
    process.stdout.write(args.json ? `${JSON.stringify({ event: 'report', report })}\n` : renderReport(report, { clone: true }));
  },
};
