/**
 * The agent's end of a move: restore, the commit (the destination is the authority: decision.ts), post-copy's wait
 * for the pages, and abort. The restored copy stays off the network (restore's holdNetwork) until this host has
 * journaled `committed`; then the network is released.
 */
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, placeRecordedRuncConfig, privateImageFiles, startLazyPagesDaemon, type CriuClient, type NetworkRelease, type RaiseNetworkResult } from '@ferry/core';
import { decide, decidePages } from '../journal/decision';
import type { AgentPeer } from '../protocol/agent-peer';
import type { PrepareNetworkParams, PrepareNetworkResult, RestoreParams, RestoreResultMessage } from '../protocol/agent-messages';
import { processId } from '../journal/proc-identity';
import { KEEPER_LOG } from '../pages/page-link-keeper';
import { ensureFreeCgroupsPath } from './cgroup-fixup';
import { finishKept, loseCopy, undoIncoming, type DestinationDeps } from './destination-moves';
import { isTreePart, type Incoming } from './incoming';
import { standbyFillRelay, startLocalPageFill } from './local-page-fill';

export interface CommitServiceContext extends DestinationDeps {
  criu: CriuClient;
  cgroupRoots: readonly string[];
  /** How to run ferry's CLI here: a lazy restore's relay then outlives this agent (local-page-fill.ts). */
  ferryCommand?: readonly string[];
  migrations: Map<string, Incoming>;
  get(id: unknown): Incoming;
}

export function serveCommit(peer: AgentPeer, ctx: CommitServiceContext): void {
  peer.handle('restore', async (params: RestoreParams): Promise<RestoreResultMessage> => {
    const m = ctx.get(params.migrationId);
    const received = Date.now();
    const bundle = join(m.dir, 'bundle');
    // No bundle arrived (--shared-storage): the recorded config.json, its relative paths the source bundle's.
    if (m.runtime === 'runc') placeRecordedRuncConfig(bundle, join(m.dir, 'images'));
    ensureFreeCgroupsPath(bundle, ctx.cgroupRoots, m.id.slice(0, 8));
    if (m.pageServer) {
      // The dump is over on the source; its page server finishes writing the pages it received.
      const { code, signal } = await m.pageServer.exited;
      if (code !== 0) {
        throw new FerryError('ERR_CRIU_PAGE_SERVER_FAILED', `the page server receiving the memory of ${m.name} ended with ${signal ?? `exit ${code}`} (log: ${m.pageServer.logPath})`, {
          hint: 'The source resumes; check the link between the hosts and migrate again.',
        });
      }
      m.journal?.release('page-server');
    }
    const started = Date.now();
    const imagesDir = join(m.dir, 'images');
    privateImageFiles(imagesDir); // the page server's CRIU wrote its pages 0644
    const workDir = join(m.dir, 'work');
    const top = m.pages?.levels;
    await m.pages?.close(); // the rounds are over
    const localLazy = params.localLazyPages === true;
    // Eager: pages marked "in parent" by the source's rewrite come from the top of the pre-copy chain. Lazy: the
    // images keep the dump's lazy marks and the relay answers them from that chain (local-page-fill.ts).
    if (top && !localLazy) symlinkSync(`../levels/${top}`, join(imagesDir, 'parent'));
    const lazy = params.lazyPagesLink === true || localLazy;
    if (!localLazy && m.fillRelay) {
      // Readied for a lazy restore that is not one after all.
      await m.releaseFill?.();
      m.journal?.release('relay');
      m.fillRelay = m.releaseFill = undefined;
    }
    let holdFillUffds: (() => void) | undefined;
    if (localLazy) {
      if (!top) throw new FerryError('ERR_AGENT_PROTOCOL', 'a lazy restore from local pages without pre-copy rounds');
      const fill = await startLocalPageFill({
        migrationId: m.id,
        dir: m.dir,
        imagesDir,
        restoreWorkDir: workDir,
        chainTop: join(m.dir, 'levels', String(top)),
        criuPath: ctx.criu.criuPath,
        relay: ctx.ferryCommand ? standbyFillRelay(m, ctx.ferryCommand) : undefined,
        log: ctx.log,
      });
      m.lazy = fill.daemon;
      m.releaseFill = fill.release;
      holdFillUffds = fill.holdNow;
      const daemon = processId(m.lazy.pid);
      m.journal?.hold({ kind: 'lazy-daemon', pids: daemon ? [daemon] : [] });
    } else if (lazy) {
      if (!m.pageLink) throw new FerryError('ERR_AGENT_PROTOCOL', 'a lazy restore without a page link (ask `page-link` first)');
      m.lazy = await startLazyPagesDaemon({ criuPath: ctx.criu.criuPath, imagesDir, workDir, pageServer: { socket: m.pageLink.pair }, detached: false });
      m.pageLink.attach();
      const daemon = processId(m.lazy.pid);
      m.journal?.hold({ kind: 'lazy-daemon', pids: daemon ? [daemon] : [] });
      void m.lazy.exited.then(({ code }) => ctx.log(`lazy-pages daemon exited (${code})`));
    }
    m.restoring = true;
    m.journal?.hold({ kind: 'restored', name: m.name });
    let result;
    const restoring = Date.now();
    // A lazy restore whose pages can no longer come (the daemon failed, the link's keeper gave up) would wait for them
    // until the tool's deadline (300 s) with the source frozen: it is stopped at once instead.
    const pagesGone = lazy ? watchPagesDuringRestore(m) : undefined;
    try {
      const attempt = ctx.runtime(m.runtime).restore({
        imagesDir,
        workDir,
        name: m.name,
        bundle,
        tcpEstablished: params.tcpEstablished,
        fileLocks: params.fileLocks,
        extUnixSk: params.extUnixSk,
        lazyPages: lazy,
        readdress: params.readdress,
        holdNetwork: true,
        ...(params.relocate ? { relocate: relocation(params.relocate, m.dir) } : {}),
        ...(pagesGone ? { signal: pagesGone.signal } : {}),
      });
      m.restoreSettled = attempt.then(() => true, () => false);
      result = await attempt;
      holdFillUffds?.(); // the copy runs: from here its userfaultfds outlive the relay
    } catch (err) {
      m.lazy?.kill();
      throw pagesGone?.signal.aborted ? pagesGone.signal.reason : err;
    } finally {
      pagesGone?.stop();
    }
    m.restored = true;
    ctx.log(`restored ${m.name} (pid ${result.container.pid ?? '?'}) in ${Date.now() - started} ms`);
    const steps = { agentMs: restoring - received, ...(result.steps ?? {}) };
    ctx.log(`restore steps of ${m.name}: ${JSON.stringify(steps)}`);
    return { pid: result.container.pid, restoreMs: result.restoreMs, steps };
  });

  // Before the freeze: the copy's network namespace, made now so that the frozen restore only joins it. Journaled
  // as the copy: an abort, or the recovery of an agent that died, removes it with the copy (remove(name)).
  peer.handle('prepare-network', async (params: PrepareNetworkParams): Promise<PrepareNetworkResult> => {
    const m = ctx.get(params.migrationId);
    const adapter = ctx.runtime(m.runtime);
    if (!adapter.prepareNetwork) return { prepared: false, reason: `${m.runtime} makes the network namespace itself` };
    if (m.restoring) throw new FerryError('ERR_AGENT_PROTOCOL', 'prepare-network after the restore began');
    m.journal?.hold({ kind: 'restored', name: m.name });
    m.networkPrepared = true;
    const prepared = await adapter.prepareNetwork(m.name, params.network, params.readdress);
    ctx.log(`network of ${m.name} ${prepared.prepared ? `prepared${prepared.held ? ', held' : ', links down'}` : `not prepared: ${prepared.reason}`}`);
    return prepared;
  });

  // The source is fenced: the prepared namespace's links come up behind its hold, so what clients send during the
  // freeze waits here for the restored sockets instead of being lost. Not once the restore began (it raises them).
  peer.handle('raise-network', async (params: { migrationId: string }): Promise<RaiseNetworkResult> => {
    const m = ctx.get(params.migrationId);
    const adapter = ctx.runtime(m.runtime);
    if (!m.networkPrepared || !adapter.raisePreparedNetwork) return { raised: false, reason: 'no network prepared' };
    if (m.restoring) return { raised: false, reason: 'the restore began' };
    const raised = await adapter.raisePreparedNetwork(m.name);
    ctx.log(`network of ${m.name} ${raised.raised ? 'raised behind its hold at the fence' : `not raised at the fence: ${raised.reason}`}`);
    return raised;
  });

  // The commit: decided here, journaled, and only then is the restored copy let onto the network.
  peer.handle('commit', async (params: { migrationId: string }) => {
    const m = ctx.get(params.migrationId);
    if (!m.restored) throw new FerryError('ERR_AGENT_PROTOCOL', 'commit before restore');
    if (decide(ctx.stateDir, m.id, 'committed') !== 'committed') {
      throw new FerryError('ERR_AGENT_FAILED', `the destination aborted migration ${m.id} before the commit arrived`, { hint: 'The source resumes; migrate again.' });
    }
    m.committed = true;
    m.journal?.append({ t: 'committed' });
    try {
      const released = await ctx.runtime(m.runtime).releaseNetwork?.(m.name);
      if (released) m.journal?.append({ t: 'note', message: describeRelease(m.name, released) });
    } catch (err) {
      ctx.log(`committed, but cannot plug ${m.name} into its network: ${(err as Error).message}`);
    }
    if (!m.lazy) finishKept(m, ctx);
    return { committed: true };
  });

  // Post-copy, after the commit: answers once every page has arrived, or (having removed the copy, which would run
  // on pages that read back as zeros) with an error once the lazy-pages daemon ended without them.
  peer.handle('await-pages', async (params: { migrationId: string }) => {
    const m = ctx.get(params.migrationId);
    if (!m.lazy || !m.committed) throw new FerryError('ERR_AGENT_PROTOCOL', 'await-pages without a committed lazy restore');
    return awaitPages(m, ctx);
  });

  peer.handle('abort', async (params: { migrationId: string }) => {
    const m = ctx.migrations.get(params.migrationId);
    if (m) {
      ctx.migrations.delete(m.id);
      await undoIncoming(m, ctx);
    }
    return { aborted: true };
  });
}

/** Aborts when a lazy restore's pages stop coming before the restore has finished. */
function watchPagesDuringRestore(m: Incoming): { signal: AbortSignal; stop(): void } {
  const gone = new AbortController();
  let watching = true;
  const lose = (why: string, code: 'ERR_POSTCOPY_SOURCE_LOST' | 'ERR_POSTCOPY_DAEMON_LOST') => {
    if (watching) gone.abort(new FerryError(code, `the restore of ${m.name} was stopped: ${why}`, { hint: 'The source resumes; check the link between the hosts and migrate again.' }));
  };
  void m.lazy?.exited.then(({ code, signal }) => {
    if (code !== 0) lose(`its lazy-pages daemon ended (${signal ?? `exit ${code}`}) before the copy had its pages (log: ${m.lazy!.logPath})`, 'ERR_POSTCOPY_DAEMON_LOST');
  });
  void m.pageLink?.keeper?.exited.then((code) => {
    if (code !== 0) lose(`the page link to the source broke (${lastLine(join(m.dir, 'link', KEEPER_LOG)) ?? `its keeper ended with ${code}`})`, 'ERR_POSTCOPY_SOURCE_LOST');
  });
  return { signal: gone.signal, stop: () => (watching = false) };
}

export function describeRelease(name: string, r: NetworkRelease): string {
  if (r.notHeld) return `network of ${name} released (nothing held: ${r.notHeld})`;
  if (r.lifted) return `network of ${name} released: the packet hold of a process that died lifted (${r.lifted})`;
  return `network of ${name} released: held ${r.heldInbound} in / ${r.heldOutbound} out, verdict ${r.verdictMs ?? '?'} ms`;
}

/** The source's paths, mapped onto the copies in this move's directory (only parts that are copies of files). */
function relocation(relocate: Record<string, string>, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [from, part] of Object.entries(relocate)) {
    if (!isTreePart(part) || !from.startsWith('/')) throw new FerryError('ERR_AGENT_PROTOCOL', `bad relocation ${from} -> ${part}`);
    out[from] = join(dir, part);
  }
  return out;
}

/** Waits for a committed post-copy's daemon; records the pages' outcome before anyone can ask for it. Once per move. */
export function awaitPages(m: Incoming, ctx: DestinationDeps): Promise<{ complete: true }> {
  m.pagesSettled ??= settlePages(m, ctx);
  return m.pagesSettled;
}

async function settlePages(m: Incoming, ctx: DestinationDeps): Promise<{ complete: true }> {
  const keeper = m.pageLink?.keeper;
  // A keeper that ends well does so because the stream ended: the daemon's exit then says how.
  const gaveUp = keeper?.exited.then((code) => (code === 0 ? new Promise<never>(() => undefined) : { keeper: code }));
  const ended = await Promise.race([m.lazy!.exited, ...(gaveUp ? [gaveUp] : [])]);
  if ('keeper' in ended) {
    const why = `the page link to the source broke and was not resumed (${lastLine(join(m.dir, 'link', KEEPER_LOG)) ?? `its keeper ended with ${ended.keeper}`})`;
    // The copy goes first: the daemon's death lets faulting tasks go on pages that would read back as zeros.
    await loseCopy(m, ctx, why);
    m.lazy!.kill();
    throw new FerryError('ERR_POSTCOPY_SOURCE_LOST', why, { hint: 'The source resumes its copy if its host is up; check the link between the hosts and migrate again.' });
  }
  m.pageLink?.close();
  m.journal?.release('page-link');
  const { code, signal } = ended;
  if (code !== 0) {
    const why = `the lazy restore's daemon ended (${signal ?? `exit ${code}`}) before every page arrived (log: ${m.lazy!.logPath})`;
    await loseCopy(m, ctx, why);
    m.lazy!.kill(); // gone already (CRIU's daemon), or a lazy restore's daemon that lost its relay
    await m.releaseFill?.(); // the copy is gone: nothing faults on the relay's copies of its userfaultfds any more
    throw new FerryError('ERR_CRIU_RESTORE_FAILED', why, { hint: 'The source resumes its copy; check the link between the hosts and migrate again.' });
  }
  if (decidePages(ctx.stateDir, m.id, 'complete') === 'complete') {
    m.journal?.release('lazy-daemon');
    finishKept(m, ctx);
  }
  return { complete: true };
}



function lastLine(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').pop()?.replace(/^\S+ /, '') || undefined;
  } catch {
    return undefined;
  }
}
