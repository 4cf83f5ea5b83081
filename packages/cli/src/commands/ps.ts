import type { CommandModule } from 'yargs';
import type { ContainerInfo, RuntimeAdapter } from '@ferry/core';
import { openMoves } from '@ferry/migrate';
import { runtimeRegistry, stateDir } from '../host-context';

export const psCommand: CommandModule<object, { json: boolean; lxcpath?: string[]; all?: boolean; verbose?: boolean }> = {
  command: 'ps',
  describe: 'List the containers ferry can see, with runtime and state',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false })
      .option('lxcpath', { alias: 'P', type: 'string', array: true, describe: 'Also list LXC containers in this lxcpath (besides FERRY_LXC_PATH and /var/lib/lxc)' })
      .option('all', { alias: 'a', type: 'boolean', describe: 'Also name the runtimes that are installed but not running here (`ferry doctor` says more)' })
      .option('verbose', { alias: 'v', type: 'boolean', describe: 'Same as --all' }),
  handler: async (args) => {
    const registry = runtimeRegistry({ lxcPaths: args.lxcpath });
    const rows: ContainerInfo[] = [];
    const problems: string[] = [];
    const unavailable: { runtime: string; reason: string }[] = [];
    for (const adapter of registry.adapters) {
      try {
        rows.push(...(await adapter.list()));
      } catch (err) {
        const absent = await notRunningHere(adapter);
        if (absent) unavailable.push({ runtime: adapter.name, reason: absent });
        else problems.push(`${adapter.name}: ${(err as Error).message}`);
      }
    }
    // A container in a move is not simply "running": its move is in flight, or was interrupted (`ferry recover`).
    const moves = new Map(openMoves(stateDir()).map((m) => [`${m.state.runtime}:${m.state.container}`, m]));
    const moveOf = (c: ContainerInfo) => {
      const m = moves.get(`${c.ref.runtime}:${c.ref.id}`);
      return m && { id: m.id, to: m.state.peer, phase: m.state.phase, state: m.ownerAlive ? ('in flight' as const) : ('interrupted' as const) };
    };
    if (args.json) {
      const containers = rows.map((c) => {
        const move = moveOf(c);
        return move ? { ...c, move } : c;
      });
      process.stdout.write(`${JSON.stringify({ containers, problems, unavailable }, null, 2)}\n`);
      return;
    }
    const stateText = (c: ContainerInfo) => {
      const m = moveOf(c);
      return m ? `${m.state === 'in flight' ? 'moving' : 'interrupted'} to ${m.to} (${m.id}, phase ${m.phase ?? 'none'})` : c.state;
    };
    const table = [['RUNTIME', 'NAME', 'STATE', 'PID', 'BUNDLE'], ...rows.map((c) => [c.ref.runtime, c.ref.id, stateText(c), String(c.pid ?? '-'), c.bundle ?? '-'])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    for (const row of table) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    for (const p of problems) process.stderr.write(`warning: ${p}\n`);
    if (args.all || args.verbose) for (const u of unavailable) process.stderr.write(`note: ${u.runtime} is not running here: ${u.reason}\n`);
  },
};

/**
 * Why a runtime whose listing failed is simply absent from this host (installed but not running, or not installed),
 * or undefined when its failure is a problem worth a warning. A Docker daemon the operator pointed at (DOCKER_HOST)
 * is never "absent": not reaching it is a problem.
 */
async function notRunningHere(adapter: RuntimeAdapter): Promise<string | undefined> {
  if (adapter.name === 'docker' && process.env.DOCKER_HOST) return undefined;
  const availability = await adapter.availability().catch((err: unknown) => ({ usable: false, reason: (err as Error).message }));
  return availability.usable ? undefined : (availability.reason ?? 'not usable');
}
