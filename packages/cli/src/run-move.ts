/**
 * What migrate and clone share once their request is built: a dry run (in this process: nothing is frozen, so no
 * guardian is needed), or the guarded move, whose report then gets the last dry run's prediction error.
 */
import type { MigrationEvent } from '@ferry/core';
import { downtimeRefusal, dryRunMigration, predictionError, takePrediction, type GuardedMove, type MigrateDeps, type MigrationReport } from '@ferry/migrate';
import { runGuarded } from './guarded-run';
import { renderDryRun } from './render-plan';

export interface MoveRun {
  move: GuardedMove;
  deps: MigrateDeps;
  dryRun: boolean;
  json: boolean;
  render(event: MigrationEvent): void;
  renderReport(report: MigrationReport): string;
}

export async function runMove(run: MoveRun): Promise<void> {
  const { request } = run.move;
  if (run.dryRun) {
    const result = await dryRunMigration(request, run.deps);
    process.stdout.write(run.json ? `${JSON.stringify({ event: 'dry-run', dryRun: result })}\n` : renderDryRun(result));
    // The same refusal the real move would give, with the same exit code.
    if (result.refusal) throw downtimeRefusal(result, request.maxDowntimeMs!);
    return;
  }
  const report = await runGuarded({
    move: run.move,
    deps: run.deps,
    onEvent: run.render,
    onNotice: (message) => run.render({ type: 'warning', message }),
    announce: run.json || process.stderr.isTTY === true,
  });
  const withPrediction = attachDryRunPrediction(report, run.deps.stateDir);
  process.stdout.write(run.json ? `${JSON.stringify({ event: 'report', report: withPrediction })}\n` : run.renderReport(withPrediction));
}

/** A recent dry run of this container to this destination: how far off its prediction was. */
export function attachDryRunPrediction(report: MigrationReport, stateDir: string): MigrationReport {
  const predicted = takePrediction(stateDir, { runtime: report.runtime, container: report.container, destination: report.destination });
  if (report.prediction || !predicted) return report;
  const actual = { bytes: report.bytesSent, freezeMs: report.downtimeMs, totalMs: report.totalMs };
  return { ...report, prediction: { ...predictionError(predicted, actual), strategy: predicted.strategy, source: 'dry-run' } };
}
