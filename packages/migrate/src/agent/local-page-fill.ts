/**
 * Hash-pre-copy's lazy restore (issue #15): after the final round the destination holds every page in its level
 * chain, so the frozen restore need not write the memory. CRIU restores with --lazy-pages and the page relay
 * (pages/relay.ts) answers the lazy-pages daemon from the chain; the daemon fills the running copy in large copies
 * (UFFDIO_COPY: no page fault per page, which is what an eager restore pays on this kernel) and serves its faults
 * first. Nothing comes from the source: a page the chain lacks is refused before the restore begins.
 *
 * The result looks like post-copy's daemon to the rest of the agent (`await-pages`, the orphan rules): `exited`
 * resolves { code: 0 } once every page is in the copy. The relay runs in this agent: if the agent dies, the daemon
 * waits for pages nobody serves and the faulting tasks block (never zeros); recovery removes the copy and says
 * `lost`, and the source, still held by its lazy dump, takes the container back. The relay keeps its copies of the
 * userfaultfds until every page is in; after a failure they go with this process, once the copy is removed.
 */
import { join } from 'node:path';
import { FerryError, type LazyPagesDaemon } from '@ferry/core';
import { PageRelay, type RelayEvent } from '../pages/relay';

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
  log(line: string): void;
}

export async function startLocalPageFill(options: LocalPageFillOptions): Promise<LazyPagesDaemon> {
  let ready: Extract<RelayEvent, { type: 'relay-ready' }> | undefined;
  const started = Date.now();
  const relay = await PageRelay.start({
    migrationId: options.migrationId,
    dir: join(options.dir, LOCAL_FILL_DIR),
    imagesDir: options.imagesDir,
    restoreWorkDir: options.restoreWorkDir,
    criuPath: options.criuPath,
    localChain: options.chainTop,
    onEvent: (e) => {
      if (e.type === 'relay-ready') ready = e;
      else if (e.type === 'daemon-lost') options.log(`lazy restore: ${e.reason}`);
    },
  });
  if (!ready || ready.remotePages > 0) {
    relay.killDaemon();
    relay.release();
    throw new FerryError('ERR_AGENT_FAILED', `a lazy restore from this host's pages lacks ${ready?.remotePages ?? 'some'} page(s) the pre-copy rounds did not bring`, {
      hint: 'The source resumes; migrate again (or without --lazy-restore).',
    });
  }
  const exited = relay.finished.then(
    (report) => {
      options.log(`lazy restore: every page in the copy after ${Date.now() - started} ms (${report.pagesAnswered} pages, ${report.daemonRequests} requests)`);
      relay.release();
      return { code: 0, signal: null };
    },
    (error: unknown) => {
      options.log(`lazy restore failed: ${(error as Error).message}`);
      return { code: 1, signal: null };
    },
  );
  return { pid: ready.daemonPid, logPath: join(options.dir, LOCAL_FILL_LOG), exited, kill: () => relay.killDaemon() };
}
