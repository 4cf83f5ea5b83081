/**
 * The watchdog of one move (`ferry guardian --watch ID PID`): holds nothing, watches the guardian (pid + start
 * time), and when the guardian is gone while the move's journal is still open, runs recovery for the move and so
 * becomes its new owner. Ends once the journal says the move is over.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrateDeps } from '../engine/migrate-deps';
import { JOURNAL_FILE, Journal, readJournal } from '../journal/journal';
import { isAlive, processId, selfId } from '../journal/proc-identity';
import { recoverMove, type RecoveryResult } from '../recovery/recover-move';

export interface WatchdogOptions {
  id: string;
  dir: string;
  guardianPid: number;
  deps: MigrateDeps;
  log(line: string): void;
  intervalMs?: number;
}

const RETRY_MS = 2_000;

export async function runWatchdog(options: WatchdogOptions): Promise<RecoveryResult | undefined> {
  const guardian = processId(options.guardianPid);
  const interval = options.intervalMs ?? 250;
  let announced = false;
  for (;;) {
    const journalled = existsSync(join(options.dir, JOURNAL_FILE));
    if (journalled) {
      const state = readJournal(options.dir);
      if (state.done) return undefined;
      if (!announced) {
        const journal = Journal.open(options.dir);
        journal.hold({ kind: 'watchdog', pids: [selfId()] });
        journal.close();
        announced = true;
      }
    }
    if (!guardian || !isAlive(guardian)) {
      if (!journalled) return undefined; // the guardian ended before the move began
      options.log(`guardian ${options.guardianPid} is gone with move ${options.id} open: recovering`);
      const result = await recoverMove(options.id, options.deps).catch((err: unknown) => ({ id: options.id, container: '?', outcome: 'failed' as const, detail: (err as Error).message }));
      options.log(`recovery: ${result.outcome}: ${result.detail}`);
      if (result.outcome === 'rolled-back' || result.outcome === 'finished') return result;
      await new Promise((r) => setTimeout(r, RETRY_MS));
      continue;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
