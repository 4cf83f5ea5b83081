/**
 * `--dry-run`: connect, negotiate, plan, measure, predict; then stop. Nothing is frozen, copied or written on the
 * destination (its agent only answers the hello and counts the probe's bytes). The prediction is kept on this host so
 * that the next real move of the container to the same destination reports how far off it was.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { greet } from './greet';
import { assessMove, type MoveAssessment } from './assess-move';
import { precheckMove } from './migrate-container';
import type { MigrateDeps, MigrateRequest } from './migrate-deps';
import { planMigration, type PlanInputs } from './plan-migration';
import type { MovePrediction } from './predict-move';
import { RateLimiter } from '../transport/rate-limiter';

export interface DryRunResult extends MoveAssessment {
  container: string;
  runtime: string;
  destination: string;
}

export async function dryRunMigration(request: MigrateRequest, deps: MigrateDeps): Promise<DryRunResult> {
  const { adapter, container, facts } = await precheckMove(request, deps);
  const connection = await deps.connectAgent(request.destination, request.signal);
  try {
    if (request.bandwidthBytesPerSec) connection.peer.limitRate(new RateLimiter(request.bandwidthBytesPerSec));
    const { local, remote } = await greet(connection.peer, deps);
    const inputs: PlanInputs = {
      request,
      source: local,
      destination: remote,
      destinationName: request.destination.name,
      runtime: { name: adapter.name, features: adapter.features, needsImage: adapter.images !== undefined },
      container: facts,
    };
    const assessment = await assessMove(connection.peer, inputs, planMigration(inputs), request, container);
    const result = { ...assessment, container: container.ref.id, runtime: adapter.name, destination: request.destination.name };
    savePrediction(deps.stateDir, result);
    return result;
  } finally {
    connection.close();
  }
}

/** How long a dry run's prediction stands for the next real move: beyond this, the workload may have changed. */
export const PREDICTION_MAX_AGE_MS = 60 * 60 * 1000;

const predictionFile = (stateDir: string, key: { runtime: string; container: string; destination: string }) =>
  join(stateDir, 'predictions', encodeURIComponent(`${key.runtime}:${key.container}@${key.destination}`));

function savePrediction(stateDir: string, result: DryRunResult): void {
  const dir = join(stateDir, 'predictions');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(predictionFile(stateDir, result), JSON.stringify({ atMs: Date.now(), prediction: result.prediction }), { mode: 0o600 });
}

/** The last dry run's prediction for this move, if recent; it is used once. */
export function takePrediction(stateDir: string, key: { runtime: string; container: string; destination: string }, nowMs = Date.now()): MovePrediction | undefined {
  const file = predictionFile(stateDir, key);
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { atMs: number; prediction: MovePrediction };
    rmSync(file, { force: true });
    return nowMs - saved.atMs <= PREDICTION_MAX_AGE_MS ? saved.prediction : undefined;
  } catch {
    return undefined;
  }
}
