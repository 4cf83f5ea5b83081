/**
 * Hash-pre-copy's lazy restore (issue #15): after the final round the destination holds every page in its level
 * chain, so the frozen restore need not write the memory. CRIU restores with --lazy-pages and the page relay
 * (pages/relay.ts, `localOnly`) answers the lazy-pages daemon from the chain; the daemon fills the running copy in
 * large copies (UFFDIO_COPY: no page fault per page, which is what an eager restore pays on this kernel) and serves
 * its faults first. Nothing comes from the source: a page the chain lacks is refused before the restore begins.
 *
 * What survives what. The relay runs as a detached process (`ferry page-relay`, own session) when the agent knows
 * how to run ferry's CLI, started during the pre-copy rounds (loading the CLI would add a second or more to the
 * frozen window) and journaled as hold `relay`: the agent's death (or its SSH session's) then stops nothing,
 * the copy keeps filling and serving, and the next agent reads the relay's report.json (fill-relay.ts). The daemon's
 * death with pages missing is a loss whoever watches: the relay holds copies of the userfaultfds, so the copy's
 * faulting tasks block (never zeros) until the copy is removed; only then is the relay let go (release()). The
 * relay's own death (kill -9) drops its copies and ends the daemon (CRIU exits when its page link closes): the
 * agent's copies (guardUffds) then block the faults until it has removed the copy. Only the death of both the agent
 * and the relay can let a faulting task read zeros. Without a CLI (tests embedding the agent) the relay runs in the
 * agent, and the agent's death loses the copy, as it did before the relay ran detached.
 *
 * The result looks like post-copy's daemon to the rest of the agent (`await-pages`, the orphan rules): `exited`
 * resolves { code: 0 } once every page is in the copy; kill() kills CRIU's daemon only.
 */
import { join } from 'node:path';
import type { LazyPagesDaemon } from '@ferry/core';
import { killIfSame, processId, type ProcessId } from '../journal/proc-identity';
import { endFillRelays } from './fill-relay';
import type { Incoming } from './incoming';
import { PageRelay, type RelayEvent } from '../pages/relay';
import { standbyPageRelay, type RelayOutcome, type RelayProcessConfig, type StandbyRelay } from '../pages/relay-process';
import { UffdProxy } from '../pages/uffd-proxy';

/** Under the move's directory: the relay's state, and its daemon's work directory and log. */
export const LOCAL_FILL_DIR = 'relay';
export const LOCAL_FILL_LOG = join(LOCAL_FILL_DIR, 'daemon', 'lazy-pages.log');

export interface LocalPageFillOptions {
  migrationId: string;
  /** The move's directory on this host. */
  dir: string;
  imagesDir: string;
  /** Where the restore's CRIU runs (its lazy-pages.socket is the relay's). */
  restoreWorkDir: string;
  /** Top of the pre-copy chain (levels/N). */
  chainTop: string;
  criuPath: string;
  /** A relay process standing by in dir/relay (standbyFillRelay): the relay runs there; absent, in this agent. */
  relay?: StandbyRelay;
  log(line: string): void;
}

export interface LocalPageFill {
  daemon: LazyPagesDaemon;
  /**
   * Takes this agent's copies of the handler's userfaultfds now (they are also taken every 50 ms): called once the
   * restore returned, before the copy may be committed, so a handler killed after that blocks faults, never zeroes.
   */
  holdNow(): void;
  /** Lets the relay drop its copies of the userfaultfds (and waits for it): only once the copy is whole, or removed. */
  release(): Promise<void>;
}

/**
 * Starts move m's relay process (once), journaled as hold `relay` before it can do anything, waiting for its work;
 * m.releaseFill ends it (an undo).
 */
export function standbyFillRelay(m: Incoming, ferryCommand: readonly string[]): StandbyRelay {
  if (m.fillRelay) return m.fillRelay;
  const standby = standbyPageRelay(join(m.dir, LOCAL_FILL_DIR), ferryCommand);
  const id = processId(standby.pid);
  if (id) m.journal?.hold({ kind: 'relay', pids: [id] });
  m.fillRelay = standby;
  m.releaseFill = () => endFillRelays(id ? [id] : []);
  return standby;
}

export async function startLocalPageFill(options: LocalPageFillOptions): Promise<LocalPageFill> {
  const config: RelayProcessConfig = {
    migrationId: options.migrationId,
    dir: join(options.dir, LOCAL_FILL_DIR),
    imagesDir: options.imagesDir,
    restoreWorkDir: options.restoreWorkDir,
    criuPath: options.criuPath,
    localChain: options.chainTop,
    localOnly: true,
  };
  const started = Date.now();
  const filled = (outcome: RelayOutcome): { code: number; signal: null } => {
    if (!outcome.ok) {
      options.log(`lazy restore failed: ${outcome.message}`);
      return { code: 1, signal: null };
    }
    const { report } = outcome;
    options.log(`lazy restore: every page in the copy after ${Date.now() - started} ms (${report.pagesAnswered} pages, ${report.daemonRequests} requests)`);
    return { code: 0, signal: null };
  };
  const logPath = join(options.dir, LOCAL_FILL_LOG);
  if (options.relay) {
    const spawned = options.relay.start(config);
    const relay = processId(spawned.pid);
    const release = () => endFillRelays(relay ? [relay] : []);
    let ready;
    try {
      ready = await spawned.ready;
    } catch (error) {
      await release(); // no restore has begun: its daemon and copies of nothing go
      throw error;
    }
    const daemon = processId(ready.daemonPid);
    const guard = daemon ? guardUffds(daemon) : undefined;
    const exited = spawned.outcome().then((outcome) => {
      if (outcome.ok) guard?.close(); // every page is in: a held userfaultfd would only block a later fault
      return filled(outcome);
    });
    const releaseAll = async () => {
      guard?.close();
      await release();
    };
    return { daemon: { pid: ready.daemonPid, logPath, exited, kill: () => void (daemon && killIfSame(daemon)) }, release: releaseAll, holdNow: () => guard?.holdNow() };
  }
  let ready: Extract<RelayEvent, { type: 'relay-ready' }> | undefined;
  const relay = await PageRelay.start({
    ...config,
    onEvent: (e) => {
      if (e.type === 'relay-ready') ready = e;
      else if (e.type === 'daemon-lost') options.log(`lazy restore: ${e.reason}`);
    },
  });
  const exited = relay.finished.then(
    (report) => filled({ ok: true, report }),
    (error: unknown) => filled({ ok: false, code: 'ERR_POSTCOPY_DAEMON_LOST', message: (error as Error).message }),
  );
  return { daemon: { pid: ready!.daemonPid, logPath, exited, kill: () => relay.killDaemon() }, release: async () => relay.release(), holdNow: () => undefined };
}

/**
 * This agent's own copies of the daemon's userfaultfds while it watches the fill (the daemon: CRIU's, or the relay
 * itself when ferry's own handler fills). CRIU's daemon exits when its link to the relay closes ("Remote side closed
 * connection"), and ferry's handler dies with the relay: were the relay killed, the last copies would go and the
 * copy's faulting tasks would read zeros until this agent removed it. Held here too, they block.
 */
function guardUffds(daemon: ProcessId): { close(): void; holdNow(): void } {
  const copies = UffdProxy.holdOnly();
  const holding = copies.keepHolding(daemon, 50);
  return {
    holdNow: () => void copies.holdDaemonUffds(daemon.pid),
    close: () => {
      holding.stop();
      copies.close();
    },
  };
}
