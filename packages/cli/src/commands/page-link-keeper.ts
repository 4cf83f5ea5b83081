import type { CommandModule } from 'yargs';
import { runPageLinkKeeper } from '@ferry/migrate';

export interface PageLinkKeeperArgs {
  dir: string;
}

/**
 * Hidden: the destination's end of post-copy's resumable page link, started detached by the agent (fd 3 is ferry's
 * end of the lazy-pages daemon's page socket), never by hand. It logs to keeper.log in its directory.
 */
export const pageLinkKeeperCommand: CommandModule<object, PageLinkKeeperArgs> = {
  command: 'page-link-keeper',
  describe: false,
  builder: (y) => y.option('dir', { type: 'string', demandOption: true, describe: "The link directory in the move's 0700 directory" }),
  handler: async (args) => {
    process.exit(await runPageLinkKeeper(args.dir));
  },
};
