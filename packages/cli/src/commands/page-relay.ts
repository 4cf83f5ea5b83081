import type { CommandModule } from 'yargs';
import { runPageRelayProcess } from '@ferry/migrate';

export interface PageRelayArgs {
  config: string;
}

/**
 * Hidden: the destination's post-copy page relay, started detached by ferry itself (spawnPageRelay), never by hand.
 * It reports through files in its directory (events.jsonl, report.json), not on the terminal.
 */
export const pageRelayCommand: CommandModule<object, PageRelayArgs> = {
  command: 'page-relay',
  describe: false,
  builder: (y) => y.option('config', { type: 'string', demandOption: true, describe: 'The relay-config.json spawnPageRelay wrote' }),
  handler: async (args) => {
    process.exit(await runPageRelayProcess(args.config));
  },
};
