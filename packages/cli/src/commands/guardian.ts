/**
 * `ferry guardian ID` and `ferry guardian --watch ID PID`: hidden commands that `ferry migrate`, `clone` and
 * `drain` start detached (the logic is migrate's run-guardian.ts and watchdog.ts). Not for people.
 */
import type { CommandModule } from 'yargs';
import { GUARDED_FILE, migrationDir, runGuardian, runWatchdog, type GuardedMove } from '@ferry/migrate';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../host-context';
import { guardianDeps } from '../migration-deps';
import { selfCommand } from '../guarded-run';

interface GuardianArgs {
  id: string;
  pid?: number;
  watch: boolean;
}

export const guardianCommand: CommandModule<object, GuardianArgs> = {
  command: 'guardian <id> [pid]',
  describe: false,
  builder: (y) =>
    y
      .positional('id', { type: 'string', demandOption: true })
      .positional('pid', { type: 'number', describe: 'The guardian a watchdog watches' })
      .option('watch', { type: 'boolean', default: false }),
  handler: async (args) => {
    const dir = migrationDir(stateDir(), args.id);
    const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${args.watch ? 'watchdog' : 'guardian'} ${process.pid}: ${line}\n`);
    if (args.watch) {
      // The watchdog holds nothing: a signal simply ends it (its guardian starts another while the move runs).
      if (args.pid === undefined) throw new Error('--watch needs the guardian pid');
      const saved = JSON.parse(readFileSync(join(dir, GUARDED_FILE), 'utf8')) as GuardedMove;
      await runWatchdog({ id: args.id, dir, guardianPid: args.pid, deps: guardianDeps(saved.ssh), log });
      process.exit(0);
    }
    // It has no terminal. SIGTERM (a shutdown), SIGINT or SIGHUP sent to it count as the CLI's abort: before the point
    // of no return the move rolls back, after it the move finishes. SIGKILL is what the watchdog is for.
    const stop = new AbortController();
    for (const signal of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort());
    const result = await runGuardian({ id: args.id, dir, deps: guardianDeps, watchdogCommand: [...selfCommand(), 'guardian', '--watch', args.id], log, stop: stop.signal });
    process.exit(result.ok ? 0 : 1);
  },
};
