/**
 * Moves one running container to another host (stop-and-copy with a freezer hold).
 *
 *   connect → negotiate → copy bundle (container running) → [pre-copy rounds: criu-precopy.ts] → freeze → checkpoint (leave running, stays frozen)
 *   → re-sync bundle → send images → restore on the destination → commit ── point of no return ── remove source
 *
 * hash-pre-copy adds rounds of changed pages before the freeze, then dumps lazily while ferry reads the frozen memory
 * itself (precopy/); post-copy restores first and pulls pages afterwards.
 *
 * Contract: when this throws, the source container runs again (thawed) and the destination holds nothing of it,
 * except in the one case the error says otherwise (ERR_ROLLBACK_FAILED: the commit's answer was lost, so ferry cannot
 * know which side holds the container; it then leaves the source frozen and names both sides).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  FerryError,
  createImageDir,
  imageDirBytes,
  isFerryError,
  lazyToParent,
  type ContainerInfo,
  type CriuClient,
  type EventSink,
  type Phase,
  type RuntimeAdapter,
  type RuntimeName,
} from '@ferry/core';
import { PROTOCOL_VERSION, type AgentPeer } from '../agent/agent-peer';
import type { HelloResult, HostSummary, RestoreResultMessage, UploadResult } from '../agent/agent-messages';
import type { Destination } from '../hosts/resolve-host';
import { diffSnapshots, fileBytes, packDir, snapshotDir, transferProgress } from '../transfer';
import { freeLocalPort } from '../transport/free-port';
import { chooseStrategy, type RequestedStrategy, type StrategyName } from './choose-strategy';
import { runRounds, type HashPrecopyResult } from '../precopy/hash-precopy';
import { runFinalRound, type FinalRoundResult } from '../precopy/frozen-round';
import { endLazyDump } from '../precopy/end-lazy-dump';
import type { ConvergencePolicy } from '../precopy/convergence-policy';
import { finalDumpReport, processCpuMs, runCriuPreCopy, type CriuPreCopyResult } from './criu-precopy';
import { UndoStack } from './undo-stack';
import { removeArrivedMigration } from '../agent/garbage';
import { anonymousMemoryBytes, checkDiskSpace, neededBytes, treeBytes } from './disk-space';

export const IMPLEMENTED_STRATEGIES: readonly StrategyName[] = ['stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'];

export interface AgentConnection {
  peer: AgentPeer;
  close(): void;
  /** Makes 127.0.0.1:localPort on this host reachable at 127.0.0.1:PORT on the destination; resolves with PORT. */
  tunnelToLocal(localPort: number): Promise<number>;
  /** Bytes sent to the destination through tunnels so far. */
  tunnelledBytes(): number;
  /** Ends every tunnelled connection: 'clean' (FIN) or 'reset' (RST); later ones get the same. */
  finishTunnels(how: 'clean' | 'reset'): void;
  /** A local port whose connections reach 127.0.0.1:remotePort on the destination. */
  forwardToRemote(remotePort: number): Promise<{ localPort: number; close(): void }>;
}

export interface MigrateDeps {
  findContainer(name: string): Promise<{ adapter: RuntimeAdapter; container: ContainerInfo }>;
  criu: CriuClient;
  connectAgent(destination: Destination, signal?: AbortSignal): Promise<AgentConnection>;
  /** Undo migration `id` on the destination over a fresh connection, when its agent is gone. */
  cleanupRemote(destination: Destination, migrationId: string): Promise<{ kept: boolean }>;
  localHost(): Promise<HostSummary>;
  stateDir: string;
}

export interface MigrateRequest {
  container: string;
  destination: Destination;
  strategy: RequestedStrategy;
  tcpEstablished: boolean;
  fileLocks: boolean;
  extUnixSk: boolean;
  /** The bundle is on storage both hosts see at the same path: do not copy it. */
  sharedStorage: boolean;
  /**
   * Stop-and-copy: stream memory pages to a page server on the destination while the dump runs (default), rather
   * than dumping to this host's disk and sending the images afterwards.
   */
  streamPages?: boolean;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** Pre-copy: when to stop rounds (default DEFAULT_CONVERGENCE_POLICY). */
  convergence?: ConvergencePolicy;
  /**
   * Clone instead of move: the source keeps running (frozen only while it is dumped) and the copy starts under
   * `name` on the destination, with new addresses when the container has any.
   */
  clone?: { name: string; readdress?: Record<string, string> };
}

export interface MigrationReport {
  migrationId: string;
  container: string;
  runtime: RuntimeName;
  destination: string;
  /** Name of the container on the destination (differs for clones). */
  destinationName: string;
  strategy: StrategyName;
  strategyReason: string;
  /** From freeze to the restored container running on the destination. */
  downtimeMs: number;
  totalMs: number;
  /** Payload bytes sent to the destination (tar streams), by phase. */
  bytesSent: number;
  bytesSentFrozen: number;
  phasesMs: Partial<Record<Phase, number>>;
  rounds: number;
  /** Pre-copy: each round, why the rounds ended, and what the final dump left to send. */
  precopy?: PrecopyReport;
  restoredPid?: number;
  warnings: string[];
}

export interface PrecopyReport {
  outcome: HashPrecopyResult['outcome'];
  reason: string;
  rounds: { round: number; pages: number; bytes: number; scannedPages: number; zeroPages: number; ms: number; readMs: number; cpuMs: number }[];
  /** Pages in the final dump, and how many of them the destination already held. */
  finalPages: number;
  finalPagesHeld: number;
  /** The round on the frozen container: what it sent, and its cost. */
  finalRound?: { pages: number; bytes: number; readMs: number; cpuMs: number; latePages: number; overlappedDump: boolean };
}

export async function migrateContainer(request: MigrateRequest, deps: MigrateDeps): Promise<MigrationReport> {
  const started = Date.now();
  const emit: EventSink = request.onEvent ?? (() => undefined);
  const undo = new UndoStack();
  const phasesMs: MigrationReport['phasesMs'] = {};
  const warnings: string[] = [];
  let bytesSent = 0;
  let bytesSentFrozen = 0;
  const migrationId = randomUUID();
  const signal = request.signal;

  async function phase<T>(name: Phase, body: () => Promise<T>, measure?: (r: T) => { bytes?: number; files?: number }): Promise<T> {
    if (signal?.aborted) throw new FerryError('ERR_ABORTED', 'migration interrupted', { hint: 'The source container keeps running.' });
    emit({ type: 'phase-start', phase: name });
    const t0 = Date.now();
    const result = await body();
    const ms = Date.now() - t0;
    phasesMs[name] = (phasesMs[name] ?? 0) + ms;
    emit({ type: 'phase-end', phase: name, ms, ...(measure ? measure(result) : {}) });
    return result;
  }

  const { adapter, container } = await deps.findContainer(request.container);
  if (container.state !== 'running') {
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `container ${request.container} is ${container.state}, not running`, {
      hint: 'Start it first, or use `ferry checkpoint` / `ferry restore` for stopped containers.',
    });
  }
  await adapter.preflight(container);
  if (adapter.features?.preDump === false && request.strategy === 'pre-copy') {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `${adapter.name} containers cannot be moved with pre-copy: ${adapter.name} cannot pre-dump`, {
      hint: 'Use --strategy hash-pre-copy or post-copy (auto picks one that works).',
    });
  }
  if (adapter.features?.lazyPages === false && request.strategy === 'post-copy') {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `${adapter.name} containers cannot be moved with post-copy: ${adapter.name} cannot restore with lazy pages`, {
      hint: 'Use --strategy stop-and-copy (auto picks it).',
    });
  }
  const name = container.ref.id;
  const clone = request.clone;
  if (clone) await checkClonable(adapter, name, clone, request.strategy);
  const targetName = clone?.name ?? name;
  const outgoing = join(deps.stateDir, 'outgoing', migrationId);
  let frozenAt: number | undefined;
  let agent: AgentConnection | undefined;

  try {
    agent = await phase('connect', () => deps.connectAgent(request.destination, signal));
    const connection = agent;
    undo.push('close the connection', () => connection.close());
    const peer = agent.peer;

    const { strategy, reason } = await phase('negotiate', async () => {
      const { local, remote } = await greet(peer, deps, adapter.name, request.destination.name);
      const choice = chooseStrategy({
        // A clone leaves the source running: only a dump that leaves it running fits (post-copy ends the source).
        requested: clone ? 'stop-and-copy' : request.strategy,
        source: { memTrack: local.criu.memTrack && adapter.features?.preDump !== false, lazyPages: local.criu.lazyPages && adapter.features?.lazyPages !== false },
        destination: { memTrack: remote.criu.memTrack, lazyPages: remote.criu.lazyPages },
        implemented: IMPLEMENTED_STRATEGIES,
      });
      const prepared = await peer.request<{ dir: string; freeDiskBytes: number }>('prepare', { migrationId, runtime: adapter.name, name: targetName });
      undo.push('clean the destination', async () => {
        // The agent undoes everything itself when its connection drops; when it is gone, ask a new one to.
        if (!peer.closed) await peer.request('abort', { migrationId }).catch(() => undefined);
        if (peer.closed) await deps.cleanupRemote(request.destination, migrationId);
        connection.finishTunnels('reset');
      });
      await checkCpu(deps.criu, peer, migrationId, outgoing);
      await checkDestinationDisk(prepared, container, request, choice.strategy);
      return choice;
    });
    emit({ type: 'plan', strategy, reason: clone ? 'a clone is a stop-and-copy: the original runs on' : reason, container: name, destination: request.destination.name });

    // Runtimes that make containers from an image (Docker): the destination gets it before the freeze if it lacks it.
    const runtimeImages = adapter.images;
    if (runtimeImages) {
      const image = await runtimeImages.imageOf(container);
      const sent = await phase(
        'copy-image',
        async () => {
          const { present } = await peer.request<{ present: boolean }>('image-has', { migrationId, image });
          if (present) return { bytes: 0 };
          return peer.request<UploadResult>('image-load', { migrationId, image }, (sink) => runtimeImages.save(image, sink));
        },
        (r) => r,
      );
      bytesSent += sent.bytes;
    }

    const bundle = container.bundle;
    let before = undefined as Awaited<ReturnType<typeof snapshotDir>> | undefined;
    if (!request.sharedStorage && bundle) {
      before = await snapshotDir(bundle);
      const sent = await phase(
        'copy-bundle',
        () => {
          const progress = transferProgress('copy-bundle', emit, fileBytes(before!));
          return peer.request<UploadResult>('upload', { migrationId, part: 'bundle' }, (sink) => packDir(bundle, sink, { onProgress: progress.onProgress }).then(progress.flush));
        },
        (r) => r,
      );
      bytesSent += sent.bytes;
    }

    const criuFlags = { tcpEstablished: request.tcpEstablished, fileLocks: request.fileLocks, extUnixSk: request.extUnixSk };
    let precopy: HashPrecopyResult | undefined;
    let precopyReport: PrecopyReport | undefined;
    // CRIU pre-copy: pre-dumps with memory tracking while the container runs (criu-precopy.ts); the final dump below
    // then holds only what changed since the last round.
    let criuPrecopy: CriuPreCopyResult | undefined;
    if (strategy === 'pre-copy') {
      criuPrecopy = await phase(
        'precopy',
        () =>
          runCriuPreCopy(
            outgoing,
            {
              preDump: async (imagesDir, workDir, parentImage) =>
                (await adapter.checkpoint(container.ref, { imagesDir, workDir, preDump: true, ...(parentImage ? { parentImage } : {}), ...criuFlags, signal })).stats,
              send: async (part, dir) => (await peer.request<UploadResult>('upload', { migrationId, part }, (sink) => packDir(dir, sink).then(() => undefined))).bytes,
              onRound: (r, step) =>
                emit({
                  type: 'precopy-round',
                  round: r.round,
                  pages: r.pages,
                  bytes: r.bytes,
                  scannedPages: r.scannedPages,
                  ms: r.ms,
                  cpuMs: r.cpuMs,
                  next: step.action,
                  reason: step.reason,
                }),
              signal,
            },
            request.convergence,
          ),
        (r) => ({ bytes: r.rounds.reduce((sum, round) => sum + round.bytes, 0) }),
      );
      bytesSent += criuPrecopy.rounds.reduce((sum, round) => sum + round.bytes, 0);
      precopyReport = {
        outcome: criuPrecopy.outcome,
        reason: criuPrecopy.reason,
        rounds: criuPrecopy.rounds.map(({ round, pages, bytes, scannedPages, zeroPages, ms, readMs, cpuMs }) => ({ round, pages, bytes, scannedPages, zeroPages, ms, readMs, cpuMs })),
        finalPages: 0,
        finalPagesHeld: 0,
      };
    }
    if (strategy === 'hash-pre-copy') {
      const pid = container.pid;
      if (!pid) throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `${adapter.name} reports no pid for ${name}`, { hint: 'Check that the container runs.' });
      precopy = await phase(
        'precopy',
        () =>
          runRounds({
            peer,
            migrationId,
            pid,
            policy: request.convergence,
            emit,
            checkpoint: () => {
              if (signal?.aborted) throw new FerryError('ERR_ABORTED', 'migration interrupted', { hint: 'The source container keeps running.' });
            },
          }),
        (r) => ({ bytes: r.bytes }),
      );
      bytesSent += precopy.bytes;
      precopyReport = {
        outcome: precopy.outcome,
        reason: precopy.reason,
        rounds: precopy.rounds.map((r) => ({ round: r.round, pages: r.pages, bytes: r.bytes, scannedPages: r.scannedPages, zeroPages: r.zeroPages, ms: r.ms, readMs: r.readMs, cpuMs: r.cpuMs })),
        finalPages: 0,
        finalPagesHeld: 0,
      };
    }

    // Streamed stop-and-copy: the destination's page server and the tunnel to it are ready before the freeze.
    let pageServer: { address: string; port: number } | undefined;
    let closePageTunnel = () => undefined as void;
    if (strategy === 'stop-and-copy' && request.streamPages !== false) {
      const { port } = await peer.request<{ port: number }>('page-server', { migrationId });
      const forward = await connection.forwardToRemote(port);
      closePageTunnel = () => forward.close();
      undo.push('close the page tunnel', closePageTunnel);
      pageServer = { address: '127.0.0.1', port: forward.localPort };
    }

    const lazyCheckpoint = strategy === 'post-copy' || strategy === 'hash-pre-copy';
    await phase('freeze', async () => {
      // Lazy dumps (post-copy, hash-pre-copy): runc refuses one of a paused container, and CRIU freezes the tree.
      if (!lazyCheckpoint) await adapter.pause(name);
      frozenAt = Date.now();
      undo.push('thaw the source', () => adapter.resume(name));
      if (clone) return; // the source keeps its network: it goes on running
      const fence = await adapter.fenceNetwork(name);
      undo.push('reconnect the source network', () => fence.unfence());
    });

    const imagesDir = createImageDir(join(outgoing, 'images'));
    const workDir = join(outgoing, 'work');
    mkdirSync(workDir, { recursive: true, mode: 0o700 });

    // Post-copy: CRIU dumps all but the pages and then serves them from a page server until the destination has
    // pulled every one; `lazyDump` settles when that is over (the source tree is then gone).
    // hash-pre-copy: the same lazy dump, but ferry reads the pages itself (frozen-round.ts); the page server is never
    // used, only ended once the destination holds the container (`heldDump`).
    let lazyDump: Promise<unknown> | undefined;
    let heldDump: Promise<unknown> | undefined;
    let pageServerPort = 0;
    if (lazyCheckpoint) {
      pageServerPort = await freeLocalPort();
      const stopDump = new AbortController();
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const dump = adapter.checkpoint(container.ref, {
        imagesDir,
        workDir,
        ...criuFlags,
        lazyPages: { address: '127.0.0.1', port: pageServerPort, onReady: () => ready() },
        signal: stopDump.signal,
      });
      dump.catch(() => undefined);
      if (strategy === 'post-copy') lazyDump = dump;
      else heldDump = dump;
      // Killing the dump makes the adapter thaw what CRIU froze; the steps pushed earlier then resume the rest.
      undo.push('stop the lazy dump', async () => {
        stopDump.abort();
        await dump.catch(() => undefined);
      });
      const dumpReady = Promise.race([
        isReady,
        dump.then(() => {
          throw new FerryError('ERR_CRIU_DUMP_FAILED', 'the lazy dump ended before its page server was ready');
        }),
      ]);
      dumpReady.catch(() => undefined);
      // hash-pre-copy: the final round starts reading as soon as the tree is frozen, while CRIU still dumps.
      let finalRound: Promise<FinalRoundResult> | undefined;
      if (precopy) {
        finalRound = runFinalRound({ peer, migrationId, initPid: container.pid!, imagesDir, sent: precopy.sent, freezerPath: container.freezerPath, dumpReady });
        finalRound.catch(() => undefined);
      }
      await phase('checkpoint', () => dumpReady);
      if (finalRound && precopyReport) {
        const final = await phase('final-round', () => finalRound!, (r) => ({ bytes: r.bytes }));
        bytesSent += final.bytes;
        bytesSentFrozen += final.bytes;
        await phase('mark-held', () => lazyToParent(imagesDir));
        precopyReport.finalPages = final.lazyPages;
        precopyReport.finalPagesHeld = Math.max(0, final.lazyPages - final.pages);
        precopyReport.finalRound = { pages: final.pages, bytes: final.bytes, readMs: final.readMs, cpuMs: final.cpuMs, latePages: final.latePages, overlappedDump: final.early };
      }
    } else {
      const sentBefore = connection.tunnelledBytes();
      await phase(
        'checkpoint',
        async () => {
          const parentImage = criuPrecopy ? { parentImage: criuPrecopy.parentImage } : {};
          const cpuBefore = processCpuMs();
          const dumped = await adapter.checkpoint(container.ref, { imagesDir, workDir, leaveRunning: true, ...criuFlags, ...parentImage, pageServer, signal });
          if (criuPrecopy && precopyReport) Object.assign(precopyReport, finalDumpReport(dumped.stats, processCpuMs() - cpuBefore));
          closePageTunnel(); // the dump has sent every page
          return { bytes: connection.tunnelledBytes() - sentBefore };
        },
        (r) => (pageServer ? r : {}),
      );
      bytesSent += connection.tunnelledBytes() - sentBefore;
      bytesSentFrozen += connection.tunnelledBytes() - sentBefore;
    }
    let sourceFrozenMs: number | undefined;
    if (clone) {
      await adapter.resume(name);
      undo.drop('thaw the source');
      sourceFrozenMs = Date.now() - (frozenAt ?? started);
    }

    if (before && bundle) {
      const diff = diffSnapshots(before, await snapshotDir(bundle));
      const changed = diff.changed.length + diff.deleted.length;
      if (changed > 0) {
        const sent = await phase(
          'resync-bundle',
          () =>
            peer.request<UploadResult>('upload', { migrationId, part: 'bundle' }, (sink) =>
              packDir(bundle, sink, { only: diff.changed, deleted: diff.deleted }).then(() => undefined),
            ),
          (r) => r,
        );
        bytesSent += sent.bytes;
        bytesSentFrozen += sent.bytes;
      }
    }

    const images = await phase(
      'transfer-images',
      async () => {
        const progress = transferProgress('transfer-images', emit, await imageDirBytes(imagesDir).catch(() => undefined));
        return peer.request<UploadResult>('upload', { migrationId, part: 'images' }, (sink) => packDir(imagesDir, sink, { onProgress: progress.onProgress }).then(progress.flush));
      },
      (r) => r,
    );
    bytesSent += images.bytes;
    bytesSentFrozen += images.bytes;

    const lazyPagesPort = lazyDump ? await connection.tunnelToLocal(pageServerPort) : undefined;
    const restored = await phase('restore', () =>
      peer.request<RestoreResultMessage>('restore', { migrationId, lazyPagesPort, readdress: clone?.readdress, ...criuFlags }),
    );
    // For a clone, "downtime" is how long the source was frozen; the copy's start does not stop the source.
    const downtimeMs = sourceFrozenMs ?? Date.now() - (frozenAt ?? started);

    if (lazyDump) {
      // The container runs on the destination and pulls its memory from the frozen source. A failure here makes
      // CRIU resume the source (the tunnel resets the page-server connection), and the rollback removes the
      // incomplete destination copy: one copy, the source's.
      await phase(
        'transfer-pages',
        async () => {
          // Only the destination knows when every page has arrived; until it says so, the page-server connection
          // stays open. Then a clean end lets CRIU finish (and end the source), a reset makes it resume the source.
          let complete = false;
          let failure: unknown;
          try {
            await peer.request('await-pages', { migrationId });
            complete = true;
          } catch (err) {
            failure = err;
            // The answer may have been lost with the connection: ask over a new one whether the copy there is whole.
            if (peer.closed) complete = await deps.cleanupRemote(request.destination, migrationId).then((r) => r.kept, () => false);
          }
          connection.finishTunnels(complete ? 'clean' : 'reset');
          try {
            await lazyDump;
          } catch (err) {
            const cause = failure ?? err;
            const code = peer.closed ? 'ERR_TRANSPORT_CLOSED' : isFerryError(cause) ? cause.code : 'ERR_CRIU_DUMP_FAILED';
            throw new FerryError(
              code,
              `post-copy was interrupted after ${name} started on ${request.destination.name} (${(cause as Error).message}); CRIU resumed the source, which holds the container again`,
              { hint: 'Clients may have seen their TCP connections reset. Check the link between the hosts and migrate again.', cause },
            );
          }
          if (!complete) {
            throw new FerryError('ERR_ROLLBACK_FAILED', `post-copy of ${name}: the source finished its dump although the destination did not confirm every page`, {
              hint: `Check ${name} on ${request.destination.name}.`,
            });
          }
          return { bytes: connection.tunnelledBytes() };
        },
        (r) => r,
      );
      bytesSent += connection.tunnelledBytes();
      // CRIU served every page and ended the source tree: the destination holds the only copy.
      undo.commit();
      try {
        await phase('commit', () => peer.request('commit', { migrationId }));
      } catch (err) {
        warnings.push(`the destination holds ${name} (every page arrived) but did not confirm the commit: ${(err as Error).message}`);
      }
    } else {
      try {
        await phase('commit', () => peer.request('commit', { migrationId }));
      } catch (err) {
        // The destination may or may not have recorded the commit: resuming here could leave two copies running, and
        // undoing there could leave none. Stop and say where the container is.
        undo.commit();
        connection.close();
        throw new FerryError(
          'ERR_ROLLBACK_FAILED',
          `the destination restored ${name} but its answer to commit was lost (${(err as Error).message}); the source copy is left frozen`,
          {
            hint: `Check ${request.destination.name}: if ${name} runs there, remove the frozen source with \`${byHand(adapter.name, name).remove}\` on this host; if not, thaw it with \`${byHand(adapter.name, name).thaw}\`.`,
            cause: err,
          },
        );
      }
    }
    // Point of no return: the destination owns the container. Failures from here on are warnings.
    undo.commit();
    emit({ type: 'committed', downtimeMs });
    if (heldDump) {
      // The lazy dump of hash-pre-copy still holds the frozen source; ending its page server cleanly makes CRIU end it.
      const dump = heldDump;
      try {
        await endLazyDump(pageServerPort);
        await dump;
      } catch (err) {
        warnings.push(`the source's lazy dump did not end cleanly (${(err as Error).message}); removing the source container`);
      }
    }

    await phase('cleanup', async () => {
      try {
        if (!clone) {
          await adapter.remove(name);
          // It had arrived here in an earlier move: that move's directory (its bundle) goes with it.
          removeArrivedMigration(deps.stateDir, container.bundle);
        }
      } catch (err) {
        warnings.push(`could not remove the source container ${name}: ${(err as Error).message}`);
      }
      rmSync(outgoing, { recursive: true, force: true });
      connection.close();
    });
    for (const message of warnings) emit({ type: 'warning', message });

    return {
      migrationId,
      container: name,
      runtime: adapter.name,
      destination: request.destination.name,
      destinationName: targetName,
      strategy,
      strategyReason: reason,
      downtimeMs,
      totalMs: Date.now() - started,
      bytesSent,
      bytesSentFrozen,
      phasesMs,
      rounds: precopy?.rounds.length ?? criuPrecopy?.rounds.length ?? 0,
      precopy: precopyReport,
      restoredPid: restored.pid,
      warnings,
    };
  } catch (err) {
    if (isFerryError(err, 'ERR_ROLLBACK_FAILED')) throw err;
    emit({ type: 'phase-start', phase: 'rollback' });
    const failures = await undo.run();
    rmSync(outgoing, { recursive: true, force: true });
    const reason = err instanceof Error ? err.message : String(err);
    emit({ type: 'rolled-back', reason, sourceFrozen: frozenAt !== undefined });
    const thawFailed = failures.find((f) => f.what === 'thaw the source');
    if (thawFailed) {
      throw new FerryError('ERR_ROLLBACK_FAILED', `migration failed (${reason}) and the source could not be thawed: ${(thawFailed.error as Error).message}`, {
        hint: `Thaw it by hand: ${byHand(adapter.name, name).thaw}`,
        cause: err,
      });
    }
    throw err;
  }
}

/** Refuses the move before anything is frozen when the destination lacks the disk it will write (disk-space.ts). */
async function checkDestinationDisk(prepared: { dir?: string; freeDiskBytes?: number } | null, container: ContainerInfo, request: MigrateRequest, strategy: StrategyName): Promise<void> {
  if (typeof prepared?.freeDiskBytes !== 'number') return;
  const estimate = {
    bundleBytes: request.sharedStorage || !container.bundle ? 0 : await treeBytes(container.bundle),
    memoryBytes: container.pid ? await anonymousMemoryBytes(container.pid).catch(() => 0) : 0,
  };
  checkDiskSpace(prepared.freeDiskBytes, neededBytes(estimate, { pagesOnDisk: strategy !== 'post-copy' }), request.destination.name, prepared.dir ?? 'its state directory');
}

/** The runtime's own commands for what a hint asks the user to do by hand. */
function byHand(runtime: RuntimeName, name: string): { thaw: string; remove: string } {
  if (runtime === 'lxc') {
    // lxc-unfreeze does not thaw the v1 freezer on hybrid cgroup hosts (measured); writing it through liblxc does.
    return { thaw: `lxc-cgroup -n ${name} freezer.state THAWED`, remove: `lxc-destroy -f -n ${name}` };
  }
  if (runtime === 'docker') return { thaw: `docker unpause ${name}`, remove: `docker rm -f ${name}` };
  if (runtime === 'podman') return { thaw: `podman unpause ${name}`, remove: `podman rm -f ${name}` };
  return { thaw: `${runtime} resume ${name}`, remove: `${runtime} delete -f ${name}` };
}

async function checkClonable(adapter: RuntimeAdapter, name: string, clone: NonNullable<MigrateRequest['clone']>, requested: RequestedStrategy): Promise<void> {
  const refuse = (message: string, hint: string) => new FerryError('ERR_PRECHECK_CLONE_CONFLICT', message, { hint });
  if (requested !== 'auto' && requested !== 'stop-and-copy') {
    throw refuse(`a clone cannot use ${requested}: it would end or stop the original`, 'Clone with --strategy auto or stop-and-copy.');
  }
  const ties = await adapter.networkTies(name);
  if (ties.establishedTcp > 0) {
    throw refuse(
      `${name} holds ${ties.establishedTcp} established TCP connection(s): a clone would answer on them too`,
      'Clone while it has no open connections (or migrate it instead).',
    );
  }
  const unaddressed = ties.addresses.filter(() => !clone.readdress || Object.keys(clone.readdress).length === 0);
  if (unaddressed.length > 0) {
    throw refuse(
      `${name} has addresses (${ties.addresses.join(', ')}) that the clone would take too`,
      'Give the clone its own address with --address IFNAME=CIDR (e.g. --address eth0=10.0.0.9/24).',
    );
  }
}


/**
 * The first exchange with the agent: both sides' facts, then every check that must pass before anything is frozen.
 * Throws ERR_PRECHECK_* on a mismatch.
 */
export async function greet(
  peer: AgentPeer,
  deps: Pick<MigrateDeps, 'localHost'>,
  runtime: RuntimeName,
  destination: string,
): Promise<{ local: HostSummary; remote: HostSummary }> {
  const local = await deps.localHost();
  const hello = await peer.request<HelloResult>('hello', {
    protocol: PROTOCOL_VERSION,
    ferryVersion: local.ferryVersion,
    source: { hostId: local.hostId, hostname: local.hostname },
  });
  checkCompatible(local, hello.host, runtime, destination);
  return { local, remote: hello.host };
}

function checkCompatible(local: HostSummary, remote: HostSummary, runtime: RuntimeName, destination: string): void {
  const stop = (code: 'ERR_PRECHECK_SAME_HOST' | 'ERR_PRECHECK_INCOMPATIBLE', message: string, hint: string) => new FerryError(code, message, { hint });
  if (local.hostId === remote.hostId) {
    throw stop('ERR_PRECHECK_SAME_HOST', `${destination} is this host (${remote.hostname})`, 'Name another host after --to.');
  }
  if (!remote.criu.versionOk || !remote.criu.checkOk) {
    throw stop('ERR_PRECHECK_INCOMPATIBLE', `CRIU on ${destination} is not usable (${remote.criu.version ?? 'missing'})`, `Run scripts/provision-host.sh and \`ferry doctor\` on ${destination}.`);
  }
  if (local.arch !== remote.arch || local.pageSizeBytes !== remote.pageSizeBytes) {
    throw stop('ERR_PRECHECK_INCOMPATIBLE', `${destination} is ${remote.arch} with ${remote.pageSizeBytes}-byte pages, this host ${local.arch} with ${local.pageSizeBytes}`, 'Migrate between hosts of the same architecture and page size.');
  }
  const rt = remote.runtimes.find((r) => r.name === runtime);
  if (!rt?.usable) {
    throw stop('ERR_PRECHECK_INCOMPATIBLE', `${runtime} is not usable on ${destination}${rt?.reason ? `: ${rt.reason}` : ''}`, `Install ${runtime} on ${destination}.`);
  }
}

async function checkCpu(criu: CriuClient, peer: AgentPeer, migrationId: string, outgoing: string): Promise<void> {
  // The destination checks this host's CPU description: restored code must find the same CPU features there.
  const dir = createImageDir(join(outgoing, 'cpuinfo'));
  await criu.cpuinfoDump(dir);
  // Only the image: CRIU may still be appending to its log in the same directory.
  const result = await peer.request<{ compatible: boolean; detail?: string }>('cpuinfo-check', { migrationId }, (sink) =>
    packDir(dir, sink, { only: ['cpuinfo.img'] }).then(() => undefined),
  );
  if (!result.compatible) {
    throw new FerryError('ERR_PRECHECK_INCOMPATIBLE', `the destination's CPU lacks features this host's CPU has${result.detail ? ` (${result.detail})` : ''}`, {
      hint: 'Migrate to a host with the same or a newer CPU model.',
    });
  }
}
