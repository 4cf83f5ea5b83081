import type { CommandModule } from 'yargs';
import { FERRY_STATE_DIR, type ContainerInfo } from '@ferry/core';
import { openMoves } from '@ferry/migrate';
import { runtimeRegistry } from '../host-context';

export const psCommand: CommandModule<object, { json: boolean; lxcpath?: string[] }> = {
  command: 'ps',
  describe: 'List the containers ferry can see, with runtime and state',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false })
      .option('lxcpath', { alias: 'P', type: 'string', array: true, describe: 'Also list LXC containers in this lxcpath (besides FERRY_LXC_PATH and /var/lib/lxc)' }),
  handler: async (args) => {
    const registry = runtimeRegistry({ lxcPaths: args.lxcpath });
    const rows: ContainerInfo[] = [];
    const problems: string[] = [];
    for (const adapter of registry.adapters) {
      try {
        rows.push(...(await adapter.list()));
      } catch (err) {
        problems.push(`${adapter.name}: ${(err as Error).message}`);
      }
    }
    // A container in a move is not simply "running": its move is in flight, or was interrupted (`ferry recover`).
    const moves = new Map(openMoves(FERRY_STATE_DIR).map((m) => [`${m.state.runtime}:${m.state.container}`, m]));
    const stateOf = (c: ContainerInfo) => {
      const move = moves.get(`${c.ref.runtime}:${c.ref.id}`);
      if (!move) return c.state;
      return `${move.ownerAlive ? 'moving' : 'interrupted'} to ${move.state.peer} (${move.id}, phase ${move.state.phase ?? 'none'})`;
    };
    if (args.json) {
      const containers = rows.map((c) => {
        const move = moves.get(`${c.ref.runtime}:${c.ref.id}`);
        return move ? { ...c, move: { id: move.id, to: move.state.peer, phase: move.state.phase, state: move.ownerAlive ? 'in flight' : 'interrupted' } } : c;
      });
      process.stdout.write(`${JSON.stringify({ containers, problems }, null, 2)}\n`);
      return;
    }
    const table = [['RUNTIME', 'NAME', 'STATE', 'PID', 'BUNDLE'], ...rows.map((c) => [c.ref.runtime, c.ref.id, stateOf(c), String(c.pid ?? '-'), c.bundle ?? '-'])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    for (const row of table) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    for (const p of problems) process.stderr.write(`warning: ${p}\n`);
  },
};
