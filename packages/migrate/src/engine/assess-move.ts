/**
 * Plan + measurements: what `--dry-run` prints and what `--max-downtime` judges. Runs after the hello and the plan,
 * before `prepare`: the destination holds nothing of the move, and the container is only read, never frozen.
 */
import { FerryError } from '@ferry/core';
import type { AgentPeer } from '../protocol/agent-peer';
import { DEFAULT_CONVERGENCE_POLICY } from '../precopy/convergence-policy';
import { measureMove } from './measure-move';
import type { MigrateRequest } from './migrate-deps';
import { planMigration, STRATEGY_PREFERENCE, type MigrationPlan, type PlanInputs, type StrategyName } from './plan-migration';
import { decideDowntime, predictMove, type MoveMeasurements, type MovePrediction } from './predict-move';

export interface MoveAssessment {
  plan: MigrationPlan;
  measurements: MoveMeasurements & { windowMs: number };
  prediction: MovePrediction;
  /** --max-downtime: the strategy planned first and why it was replaced, when it was. */
  fallback?: { from: StrategyName; reason: string };
  /** --max-downtime cannot be met: why (the move refuses with ERR_PRECHECK_DOWNTIME). */
  refusal?: string;
}

/**
 * The plans a --max-downtime fall-back may take, in order: those after the planned one that the hosts allow, and
 * hash-pre-copy's lazy restore right after its eager one (the same rounds, a freeze that does not grow with memory;
 * `auto` plans it already where it can). Never a lazy restore when --no-lazy-restore said so.
 */
export function downtimeCandidates(inputs: PlanInputs, plan: MigrationPlan): MigrationPlan[] {
  if (inputs.request.strategy !== 'auto' || inputs.request.clone) return [plan];
  const methods = STRATEGY_PREFERENCE.flatMap((strategy) => (strategy === 'hash-pre-copy' ? [false, true] : [false]).map((lazyRestore) => ({ strategy, lazyRestore })));
  const planned = methods.findIndex((m) => m.strategy === plan.strategy && m.lazyRestore === plan.lazyRestore);
  const plans = [plan];
  for (const { strategy, lazyRestore } of methods.slice(planned + 1)) {
    if (lazyRestore && inputs.request.lazyRestore === false) continue;
    try {
      plans.push(planMigration({ ...inputs, request: { ...inputs.request, strategy, lazyRestore } }));
    } catch {
      // not possible between these hosts
    }
  }
  return plans;
}

export async function assessMove(
  peer: AgentPeer,
  inputs: PlanInputs,
  plan: MigrationPlan,
  request: Pick<MigrateRequest, 'convergence' | 'maxDowntimeMs' | 'bandwidthBytesPerSec'> & { container?: unknown },
  container: { pid?: number; bundle?: string },
): Promise<MoveAssessment> {
  const trees = plan.copyBundle ? [container.bundle!, ...plan.copyTrees.map((t) => t.path)] : [];
  const measurements = await measureMove(peer, container, trees, request.bandwidthBytesPerSec);
  const policy = request.convergence ?? DEFAULT_CONVERGENCE_POLICY;
  const plans = downtimeCandidates(inputs, plan);
  const predictions = plans.map((p) => predictMove(p.strategy, measurements, policy, { lazyRestore: p.lazyRestore }));
  if (request.maxDowntimeMs === undefined) return { plan, measurements, prediction: predictions[0]! };
  const decision = decideDowntime(predictions, request.maxDowntimeMs);
  if (decision.action === 'keep') return { plan, measurements, prediction: decision.prediction };
  if (decision.action === 'refuse') return { plan, measurements, prediction: predictions[0]!, refusal: decision.reason };
  const chosen = plans[predictions.indexOf(decision.prediction)]!;
  return {
    plan: { ...chosen, reason: `${decision.reason} (--max-downtime)` },
    measurements,
    prediction: decision.prediction,
    fallback: { from: plan.strategy, reason: decision.reason },
  };
}

export function downtimeRefusal(assessment: MoveAssessment, maxDowntimeMs: number): FerryError {
  return new FerryError('ERR_PRECHECK_DOWNTIME', `cannot keep the freeze under ${maxDowntimeMs} ms: ${assessment.refusal}`, {
    hint: 'Raise --max-downtime, move when the container is quieter, or give it a faster link (or a higher --bandwidth); `ferry migrate --dry-run` shows the numbers.',
  });
}
