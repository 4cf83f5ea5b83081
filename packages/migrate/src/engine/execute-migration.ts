/**
 * The one skeleton of phases every move follows; strategies fill in their hooks (strategies/strategy.ts).
 *
 *   connect → negotiate (plan) → copy-image → copy-bundle → prepare-network → [before freeze] → freeze → [dump] → resync-bundle
 *   → transfer-images → restore → commit ── point of no return ── [after commit] → cleanup
 *
 * Every side effect is journaled before it acts and has its undo registered before it happens. The commit is two
 * phases: this host journals `commit-intent`, the destination journals `committed` (it is the authority, and answers
 * `status ID` with it), then this host journals `committed`. If the answer is lost, the destination is asked over a
 * new connection; if it cannot be asked, the source stays frozen and the move is in doubt (ERR_MOVE_IN_DOUBT), to
 * be resolved by recovery, never guessed.
 */
import { FerryError, imageDirBytes, isFerryError } from '@ferry/core';
import { removeMoveFiles } from '../journal/journal';
import { endDump } from '../recovery/end-dump';
import type { RestoreResultMessage, UploadResult } from '../protocol/agent-messages';
import { removeArrivedMigration } from '../agent/garbage';
import { diffSnapshots, fileBytes, snapshotDir } from '../transfer';
import { anonymousMemoryBytes, checkDiskSpace, neededBytes, treeBytes } from './disk-space';
import { commit } from './commit';
import { prepareNetwork, raiseNetworkAtFence, refreshNetwork } from './prepare-network';
import { checkCpu, greet } from './greet';
import type { MigrationReport } from './migrate-deps';
import type { MoveContext } from './move-context';
import { planMigration, type ContainerFacts, type PlanInputs } from './plan-migration';
import { assessMove, downtimeRefusal } from './assess-move';
import { predictionError, type MovePrediction } from './predict-move';
import { RateLimiter } from '../transport/rate-limiter';
import { criuPreCopy } from './strategies/criu-pre-copy';
import { hashPreCopy } from './strategies/hash-pre-copy';
import { postCopy } from './strategies/post-copy';
import { stopAndCopy } from './strategies/stop-and-copy';
import type { MoveStrategy } from './strategies/strategy';
import type { StrategyName } from './plan-migration';

const STRATEGIES: Record<StrategyName, (ctx: MoveContext) => MoveStrategy> = {
  'stop-and-copy': stopAndCopy,
  'pre-copy': criuPreCopy,
  'hash-pre-copy': hashPreCopy,
  'post-copy': postCopy,
};

export async function executeMigration(ctx: MoveContext, facts: ContainerFacts): Promise<MigrationReport> {
  const { adapter, request, revert, name } = ctx;
  try {
    ctx.connection = await ctx.phase('connect', () => ctx.deps.connectAgent(request.destination, request.signal));
    revert.add('close the connection', () => ctx.connection.close());
    if (request.bandwidthBytesPerSec) ctx.peer.limitRate(new RateLimiter(request.bandwidthBytesPerSec));
    const predicted = await negotiate(ctx, facts);
    const strategy = STRATEGIES[ctx.plan.strategy](ctx);
    await copyImage(ctx);
    const trees = ctx.plan.copyBundle ? await copyBundle(ctx) : [];
    await prepareNetwork(ctx);
    await strategy.beforeFreeze?.();
    await refreshNetwork(ctx);
    const thaw = await freeze(ctx, strategy);
    await strategy.dump();
    let sourceFrozenMs: number | undefined;
    if (ctx.plan.clone) {
      await adapter.resume(name);
      thaw.release();
      ctx.journal.release('frozen');
      sourceFrozenMs = Date.now() - (ctx.frozenAt ?? ctx.started);
    }
    await resyncBundle(ctx, trees);
    const images = await ctx.phase('transfer-images', async () => ctx.upload('images', ctx.imagesDir, {}, await imageDirBytes(ctx.imagesDir).catch(() => undefined)), (r) => r);
    ctx.sent(images.bytes, true);
    const restoreParams = (await strategy.restoreParams?.()) ?? {};
    await ctx.networkRaised;
    // Paths of the container's configuration that the copies moved: the destination restores onto the copies.
    const relocate = Object.fromEntries(trees.map((t) => [t.dir, t.part]));
    const restored = await ctx.phase('restore', () =>
      ctx.peer.request<RestoreResultMessage>('restore', { migrationId: ctx.id, readdress: request.clone?.readdress, ...ctx.criuFlags, ...restoreParams, ...(trees.length ? { relocate } : {}) }),
    );
    // For a clone, "downtime" is how long the source was frozen; the copy's start does not stop the source.
    const downtimeMs = sourceFrozenMs ?? Date.now() - (ctx.frozenAt ?? ctx.started);

    await commit(ctx);
    // Point of no return: the destination owns the container. Failures from here on are warnings.
    const fallback = revert.success();
    ctx.emit({ type: 'committed', downtimeMs });
    await strategy.afterCommit?.(fallback);
    await cleanup(ctx);
    ctx.journal.append({ t: 'done', outcome: ctx.plan.clone ? 'cloned' : 'moved' });
    for (const message of ctx.warnings) ctx.emit({ type: 'warning', message });
    return {
      migrationId: ctx.id,
      container: name,
      runtime: adapter.name,
      destination: request.destination.name,
      destinationName: ctx.plan.targetName,
      strategy: ctx.plan.strategy,
      ...(ctx.plan.lazyRestore ? { lazyRestore: true as const } : {}),
      strategyReason: ctx.plan.reason,
      downtimeMs,
      totalMs: Date.now() - ctx.started,
      bytesSent: ctx.bytesSent,
      bytesSentFrozen: ctx.bytesSentFrozen,
      phasesMs: ctx.phasesMs,
      ...strategy.report(),
      restoredPid: restored.pid,
      ...(restored.steps ? { restoreSteps: restored.steps } : {}),
      ...(predicted ? { prediction: { ...predictionError(predicted, { bytes: ctx.bytesSent, freezeMs: downtimeMs, totalMs: Date.now() - ctx.started }), strategy: predicted.strategy, source: 'max-downtime' as const } } : {}),
      warnings: ctx.warnings,
    };
  } catch (err) {
    if (isFerryError(err, 'ERR_MOVE_IN_DOUBT')) throw err; // the journal stays open: recovery resolves it
    if (ctx.pastPointOfNoReturn) {
      // Only post-copy's loss of the destination copy gets here, with the source back already.
      ctx.journal.append({ t: 'done', outcome: 'rolled-back', error: describe(err) });
      throw err;
    }
    throw await rollBack(ctx, err);
  }
}

/** Returns the prediction --max-downtime's measurements made (assess-move.ts), when it was given. */
async function negotiate(ctx: MoveContext, facts: ContainerFacts): Promise<MovePrediction | undefined> {
  const { adapter, request } = ctx;
  let predicted: MovePrediction | undefined;
  await ctx.phase('negotiate', async () => {
    const { local, remote } = await greet(ctx.peer, ctx.deps);
    const inputs: PlanInputs = {
      request,
      source: local,
      destination: remote,
      destinationName: request.destination.name,
      runtime: { name: adapter.name, features: adapter.features, needsImage: adapter.images !== undefined },
      container: facts,
    };
    ctx.plan = planMigration(inputs);
    if (request.maxDowntimeMs !== undefined) {
      const assessment = await assessMove(ctx.peer, inputs, ctx.plan, request, ctx.container);
      if (assessment.refusal) throw downtimeRefusal(assessment, request.maxDowntimeMs);
      ctx.plan = assessment.plan;
      predicted = assessment.prediction;
    }
    ctx.journal.append({ t: 'plan', strategy: ctx.plan.strategy, reason: ctx.plan.reason, ...(ctx.plan.lazyRestore ? { lazyRestore: true as const } : {}) });
    ctx.journal.hold({ kind: 'prepared', name: ctx.plan.targetName });
    const prepared = await ctx.peer.request<{ dir?: string; freeDiskBytes?: number } | null>('prepare', { migrationId: ctx.id, runtime: adapter.name, name: ctx.plan.targetName });
    ctx.revert.add('clean the destination', () => ctx.cleanDestination());
    await checkCpu(ctx.deps.criu, ctx.peer, ctx.id, ctx.journal.dir);
    await checkDestinationDisk(ctx, prepared);
  });
  ctx.emit({ type: 'plan', strategy: ctx.plan.strategy, reason: ctx.plan.reason, container: ctx.name, destination: request.destination.name });
  return predicted;
}

/** Refuses the move before anything is frozen when the destination lacks the disk it will write (disk-space.ts). */
async function checkDestinationDisk(ctx: MoveContext, prepared: { dir?: string; freeDiskBytes?: number } | null): Promise<void> {
  if (typeof prepared?.freeDiskBytes !== 'number') return;
  const trees = ctx.plan.copyBundle ? [ctx.container.bundle!, ...ctx.plan.copyTrees.map((t) => t.path)] : [];
  const estimate = {
    bundleBytes: (await Promise.all(trees.map((dir) => treeBytes(dir)))).reduce((a, b) => a + b, 0),
    memoryBytes: ctx.container.pid ? await anonymousMemoryBytes(ctx.container.pid).catch(() => 0) : 0,
  };
  const needed = neededBytes(estimate, { pagesOnDisk: ctx.plan.strategy !== 'post-copy' });
  checkDiskSpace(prepared.freeDiskBytes, needed, ctx.request.destination.name, prepared.dir ?? 'its state directory');
}

/** Runtimes that make containers from an image (Docker): the destination gets it before the freeze if it lacks it. */
async function copyImage(ctx: MoveContext): Promise<void> {
  const images = ctx.adapter.images;
  if (!images || !ctx.plan.copyImage) return;
  const image = await images.imageOf(ctx.container);
  const networks = (await images.networksOf?.(ctx.container)) ?? [];
  const sent = await ctx.phase(
    'copy-image',
    async () => {
      const { present, missingNetworks } = await ctx.peer.request<{ present: boolean; missingNetworks?: string[] }>('image-has', { migrationId: ctx.id, image, ...(networks.length ? { networks } : {}) });
      if (missingNetworks?.length) throw missingNetworksError(ctx.container.ref.id, ctx.request.destination.name, missingNetworks);
      if (present) return { bytes: 0 };
      return ctx.peer.request<UploadResult>('image-load', { migrationId: ctx.id, image }, (sink) => images.save(image, sink));
    },
    (r) => r,
  );
  ctx.sent(sent.bytes);
}

/** The destination lacks a network the container is on: its restore would fail at create, after the freeze. */
function missingNetworksError(container: string, destination: string, missing: string[]): FerryError {
  const list = missing.join(', ');
  return new FerryError('ERR_PRECHECK_INCOMPATIBLE', `${destination} has no network ${list}, which container ${container} is on: its copy there could not join it`, {
    hint: `Create the network on ${destination} with the same name (for clients to keep reaching the container: the same driver, subnet and parent LAN, e.g. a macvlan; docs/docker.md), then move it again.`,
    details: { container, destination, missingNetworks: missing },
  });
}

interface CopiedTree {
  part: string;
  dir: string;
  before: Awaited<ReturnType<typeof snapshotDir>>;
}

/** The bundle (and a rootfs outside it), while the container runs; what changes until the freeze is sent again. */
async function copyBundle(ctx: MoveContext): Promise<CopiedTree[]> {
  const trees = [{ part: 'bundle', dir: ctx.container.bundle! }, ...ctx.plan.copyTrees.map((t) => ({ part: t.part, dir: t.path }))];
  const copied: CopiedTree[] = [];
  const sent = await ctx.phase(
    'copy-bundle',
    async () => {
      let bytes = 0;
      let files = 0;
      for (const tree of trees) {
        const before = await snapshotDir(tree.dir);
        const r = await ctx.upload(tree.part, tree.dir, {}, fileBytes(before));
        bytes += r.bytes;
        files += r.files;
        copied.push({ ...tree, before });
      }
      return { bytes, files };
    },
    (r) => r,
  );
  ctx.sent(sent.bytes);
  return copied;
}

async function resyncBundle(ctx: MoveContext, trees: readonly CopiedTree[]): Promise<void> {
  const changes = await Promise.all(trees.map(async (t) => ({ tree: t, diff: diffSnapshots(t.before, await snapshotDir(t.dir)) })));
  const changed = changes.filter((c) => c.diff.changed.length + c.diff.deleted.length > 0);
  if (changed.length === 0) return;
  const sent = await ctx.phase(
    'resync-bundle',
    async () => {
      let bytes = 0;
      let files = 0;
      for (const { tree, diff } of changed) {
        const r = await ctx.upload(tree.part, tree.dir, { only: diff.changed, deleted: diff.deleted });
        bytes += r.bytes;
        files += r.files;
      }
      return { bytes, files };
    },
    (r) => r,
  );
  ctx.sent(sent.bytes, true);
}

/** Freezes the source (or leaves that to a lazy dump) and, for a move, cuts its network. Returns the thaw step. */
async function freeze(ctx: MoveContext, strategy: MoveStrategy) {
  const { adapter, name } = ctx;
  return ctx.phase('freeze', async () => {
    ctx.journal.hold({ kind: 'frozen' });
    if (strategy.pauseBeforeDump) await adapter.pause(name);
    ctx.frozenAt = Date.now();
    const thaw = ctx.revert.add('thaw the source', () => adapter.resume(name));
    if (ctx.plan.clone) return thaw; // the source keeps its network: it goes on running
    ctx.journal.hold({ kind: 'fence' });
    const fence = await adapter.fenceNetwork(name, ctx.known);
    ctx.revert.add('reconnect the source network', () => fence.unfence());
    ctx.journal.hold({ kind: 'fence', fence: { ...fence } });
    raiseNetworkAtFence(ctx);
    return thaw;
  });
}

async function cleanup(ctx: MoveContext): Promise<void> {
  await ctx.phase('cleanup', async () => {
    try {
      if (!ctx.plan.clone) {
        await ctx.adapter.remove(ctx.name);
        // It had arrived here in an earlier move: that move's directory (its bundle and copies) goes with it.
        removeArrivedMigration(ctx.deps.stateDir, ctx.container);
      }
    } catch (err) {
      ctx.warnings.push(`could not remove the source container ${ctx.name}: ${(err as Error).message}`);
    }
    removeMoveFiles(ctx.journal.dir);
    ctx.connection.close();
  });
}

async function rollBack(ctx: MoveContext, err: unknown): Promise<unknown> {
  ctx.emit({ type: 'phase-start', phase: 'rollback' });
  ctx.journal.append({ t: 'phase', phase: 'rollback' });
  const failures = await ctx.revert.fail();
  // A dump stopped by the undo steps may leave CRIU's network lock (and, killed, criu itself) behind.
  const dump = ctx.journal.state().holds.get('dump');
  if (dump) {
    await endDump(dump, ctx.container).then(
      () => ctx.journal.release('dump'),
      (e: unknown) => failures.push({ step: { what: 'end the dump', release: () => undefined }, error: e }),
    );
  }
  removeMoveFiles(ctx.journal.dir);
  const reason = err instanceof Error ? err.message : String(err);
  ctx.emit({ type: 'rolled-back', reason, sourceFrozen: ctx.frozenAt !== undefined });
  const thawFailed = failures.find((f) => f.step.what === 'thaw the source');
  const state = await ctx.adapter.inspect(ctx.name).then((c) => c.state, () => 'gone' as const);
  if (state !== 'running' && state !== 'paused') {
    // The container ended on its own during the move: nothing to bring back, and the destination was cleaned.
    ctx.journal.append({ t: 'done', outcome: 'failed', error: describe(err) });
    return new FerryError('ERR_RUNTIME_NOT_RUNNING', `${ctx.name} exited during the move (${reason}); nothing of it was left on ${ctx.request.destination.name}`, {
      hint: 'Find out why it exited (its logs), start it again, and migrate once it runs.',
      cause: err,
    });
  }
  if (thawFailed) {
    // Left open: `ferry recover` retries the thaw.
    return new FerryError('ERR_ROLLBACK_FAILED', `migration failed (${reason}) and the source could not be thawed: ${(thawFailed.error as Error).message}`, {
      hint: `Run \`ferry recover ${ctx.id}\`, or thaw it by hand: ${ctx.adapter.manualCommands(ctx.name).thaw}`,
      cause: err,
    });
  }
  ctx.journal.append({ t: 'done', outcome: 'rolled-back', error: describe(err) });
  return err;
}

function describe(err: unknown): { code: string; message: string } {
  return { code: isFerryError(err) ? err.code : 'ERR_BUG', message: err instanceof Error ? err.message : String(err) };
}
