import type { CommandModule } from 'yargs';
import { openMoves, recoverMoves } from '@ferry/migrate';
import { stateDir } from '../host-context';
import { migrationDeps } from '../migration-deps';

interface RecoverArgs {
  id?: string;
  list: boolean;
  json: boolean;
  'accept-new-host-key': boolean;
  'agent-command'?: string;
}

export const recoverCommand: CommandModule<object, RecoverArgs> = {
  command: 'recover [id]',
  describe: 'Finish or roll back moves whose guardian died (all interrupted moves on this host, or only ID)',
  builder: (y) =>
    y
      .positional('id', { type: 'string', describe: 'A move id (from `ferry ps`, the migrate output or its error)' })
      .option('list', { type: 'boolean', default: false, describe: 'Only list moves that are in flight or interrupted' })
      .option('accept-new-host-key', { type: 'boolean', default: false })
      .option('agent-command', { type: 'string', hidden: true })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    if (args.list) {
      const moves = openMoves(stateDir()).map((m) => ({ id: m.id, container: `${m.state.runtime}:${m.state.container}`, to: m.state.peer, phase: m.state.phase, state: m.ownerAlive ? 'in flight' : 'interrupted' }));
      if (args.json) process.stdout.write(`${JSON.stringify({ moves })}\n`);
      else for (const m of moves) process.stdout.write(`${m.id}  ${m.container} -> ${m.to}  ${m.state} (phase ${m.phase ?? 'none'})\n`);
      if (!args.json && moves.length === 0) process.stdout.write('no moves in flight or interrupted\n');
      return;
    }
    const results = await recoverMoves(migrationDeps(args), args.id ? [args.id] : undefined);
    if (args.json) process.stdout.write(`${JSON.stringify({ results })}\n`);
    else if (results.length === 0) process.stdout.write(args.id ? `no open move ${args.id} on this host\n` : 'nothing to recover\n');
    else for (const r of results) process.stdout.write(`${r.id}  ${r.container}: ${r.outcome}: ${r.detail}\n`);
    if (results.some((r) => r.outcome === 'failed' || r.outcome === 'in-doubt')) process.exitCode = 8;
  },
};
