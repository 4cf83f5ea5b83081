import type { CommandModule } from 'yargs';
import { runPageRelayProcess } from '@ferry/migrate';

export interface PageRelayArgs {
  config: string;
}

/**
 * Hidden: the destination's page relay (post-copy, and the lazy restore's fill from local pages), started detached by
 * ferry itself (spawnPageRelay, standbyPageRelay: it may wait for its config file), never by hand. It reports through
 * files in its directory (events.jsonl, report.json), not on the terminal.
 */
export const pageRelayCommand: CommandModule<object, PageRelayArgs> = {
  command: 'page-relay',
  describe: false,
  builder: (y) => y.option('config', { type: 'string', demandOption: true, describe: 'The relay-config.json spawnPageRelay wrote' }),
  handler: async (args) => {
    process.exit(await runPageRelayProcess(args.config));
  },
};
