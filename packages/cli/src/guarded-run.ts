/**
 * How the CLI runs a move: in a guardian process (migrate's start-guarded-move.ts), attached over its control socket.
 * SIGINT, SIGTERM and SIGHUP ask the guardian to abort: before the point of no return it rolls back, after it the
 * move finishes and this says so. A second signal detaches: the guardian goes on alone.
 */
import type { MigrationEvent } from '@ferry/core';
import { stateDir } from './host-context';
import { precheckMove, pruneFinishedMoves, recoverMoves, startGuardedMove, type GuardedMove, type MigrateDeps, type MigrationReport, type RecoveryResult } from '@ferry/migrate';

/** argv that runs this ferry again (for the guardian and its watchdog). */
export function selfCommand(): string[] {
  return [process.execPath, process.argv[1]!];
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface GuardedRunOptions {
  move: GuardedMove;
  /** This host's deps: bad input is refused here, before a guardian starts. */
  deps: MigrateDeps;
  onEvent(event: MigrationEvent): void;
  onNotice(message: string): void;
  /** Show the guardian event (--json, or a terminal); scripts reading plain stderr see the error first. */
  announce: boolean;
}

export async function runGuarded(options: GuardedRunOptions): Promise<MigrationReport> {
  await precheckMove(options.move.request, options.deps);
  const handle = await startGuardedMove({
    stateDir: stateDir(),
    move: options.move,
    guardianCommand: [...selfCommand(), 'guardian'],
    onEvent: options.onEvent,
    onNotice: options.onNotice,
  });
  if (options.announce) options.onEvent({ type: 'guardian', id: handle.id, pid: handle.guardianPid });
  let asked = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!asked) {
      asked = true;
      options.onNotice(`${signal}: asking the guardian to stop the move (it rolls back unless past the point of no return)`);
      return handle.abort(signal);
    }
    options.onNotice(`${signal} again: detached; the guardian goes on with move ${handle.id} (\`ferry recover ${handle.id}\` shows it)`);
    handle.detach();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  // The terminal may be gone (SIGHUP): a failed write must not end this command while the guardian reports.
  const ignore = () => undefined;
  process.stdout.on('error', ignore);
  process.stderr.on('error', ignore);
  try {
    return await handle.result;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}

/** Every migrate, clone and drain first resolves moves on this host whose guardian died (crash-safety §2). */
export async function recoverInterrupted(deps: MigrateDeps, say: (line: string) => void): Promise<RecoveryResult[]> {
  pruneFinishedMoves(deps.stateDir);
  const results = (await recoverMoves(deps)).filter((r) => r.outcome !== 'left');
  for (const r of results) say(`recovered an interrupted move of ${r.container} (${r.id}): ${r.outcome}: ${r.detail}`);
  return results;
}
