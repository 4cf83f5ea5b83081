/**
 * The destination page relay (docs/design/crash-safety.md section 4): between the restore's lazy-pages daemon and the
 * source. It answers the daemon (daemon-channel.ts) from pages the destination holds first (hash-pre-copy's chain,
 * then pages already fetched), fetches the rest over the page link (link-requester.ts), pulls everything still missing
 * in the background (page-puller.ts), and holds a copy of every userfaultfd (uffd-proxy.ts).
 *
 * It listens on nothing but unix sockets in 0700 directories: dir/link.sock (the source dials in through SSH) and the
 * restore's lazy-pages.socket (the proxy). A successor relay (takeover) reclaims the daemon's page socket and goes on.
 *
 * Contract: start() resolves once the restore may begin (`criu restore --lazy-pages -W restoreWorkDir -D imagesDir`).
 * `finished` resolves when the daemon has copied every page; `sourceReleased` once the source has heard so over the
 * link (it may end its copy then; a relay whose pages were all local may never hear from a source; a `localOnly` one
 * resolves it with `finished`, having no source). `finished`
 * rejects with ERR_POSTCOPY_DAEMON_LOST (the daemon died with pages missing: the restored tasks wait on missing
 * pages and must be killed, then release()) or ERR_POSTCOPY_SOURCE_LOST (the source cannot serve: the same).
 */
import { closeSync, existsSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { acceptSocket, listenUnix, StreamSocket, type FdHandle } from '@ferry/core';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { ensurePrivateDir, FerryError, lazyRanges } from '@ferry/core';
import { subtract, union, type Interval } from '../precopy/page-intervals';
import { serveDaemon, type DaemonGet } from './daemon-channel';
import { LinkRequester, type LinkEvent } from './link-requester';
import { PagePuller, type PullPolicy, type PullStats } from './page-puller';
import { addressOf, ChainPageStore, FetchedPages, localRun, PAGE, pageOf, readLocal, type PageStore } from './page-store';
import { adoptRelayDaemon, readDaemonRecord, startRelayDaemon, type RelayDaemon } from './relay-daemon';
import { UffdProxy } from './uffd-proxy';
import { lazyPagesHandler, startOwnHandler, type OwnHandler } from './own-handler';
import type { LocalLazyPagesReport } from './local-lazy-pages';
import { processId } from '../journal/proc-identity';

export const LINK_SOCKET = 'link.sock';
/** (pid u32, pages u32, first page u64) per answer the daemon took, appended. */
const ANSWERED_LOG = 'answered.bin';

function readAnswered(path: string): Map<number, Interval[]> {
  const out = new Map<number, Interval[]>();
  if (!existsSync(path)) return out;
  const b = readFileSync(path);
  for (let at = 0; at + 16 <= b.length; at += 16) {
    const pid = b.readUInt32LE(at);
    const first = Number(b.readBigUInt64LE(at + 8));
    out.set(pid, union(out.get(pid) ?? [], [[first, first + b.readUInt32LE(at + 4)]]));
  }
  return out;
}

export interface PageRelayOptions {
  migrationId: string;
  /** The relay's own directory (0700 is enforced): link.sock, the daemon's work dir, state for a successor. */
  dir: string;
  /** The lazy dump's images: the daemon's -D, and the list of pages left for later. */
  imagesDir: string;
  /** Where `criu restore --lazy-pages` runs (-W, 0700): the proxy's lazy-pages.socket goes there. */
  restoreWorkDir: string;
  criuPath?: string;
  /** Top of a CRIU parent chain holding pages already (hash-pre-copy's levels/N). */
  localChain?: string;
  /**
   * Every page must come from localChain (hash-pre-copy's lazy restore): no source will ever dial in, so the relay
   * refuses to start when the chain lacks a page, listens on no link, and is released as soon as the daemon finished.
   */
  localOnly?: boolean;
  pull?: Partial<PullPolicy>;
  /** Take over from a relay that died (same dir): its daemon goes on, no new restore. */
  takeover?: boolean;
  onEvent?: (event: RelayEvent) => void;
}

export type RelayEvent =
  | { type: 'relay-ready'; daemonPid: number; localPages: number; remotePages: number; takeover: boolean }
  | { type: 'restore-attached'; tasks: number }
  | LinkEvent
  | { type: 'pull-progress'; pagesFetched: number; remainingPages: number }
  | { type: 'daemon-finished'; report: RelayReport }
  | { type: 'source-released' }
  | { type: 'daemon-lost'; reason: string; uffdsHeld: number }
  | { type: 'source-lost'; message: string };

export interface RelayReport {
  /** Pages the daemon was answered with, from the local chain and fetched from the source. */
  pagesAnswered: number;
  daemonRequests: number;
  /** Pages the restore needed that the destination did not hold. */
  remotePages: number;
  pull: PullStats;
  /** ferry's own lazy-pages handler's account (a lazy restore from local pages without CRIU's daemon). */
  handler?: LocalLazyPagesReport;
  /** Page bytes received over the link per second of the pull, and the pull's duration. */
  pullMiBps?: number;
  pullMs?: number;
}

export class PageRelay {
  private readonly requester: LinkRequester;
  private listener: FdHandle | undefined;
  private proxy: UffdProxy | undefined;
  private daemon: RelayDaemon | undefined;
  private ownHandler: OwnHandler | undefined;
  private chain: ChainPageStore | undefined;
  private readonly fetched = new FetchedPages();
  private puller!: PagePuller;
  private remotePages = 0;
  private holding: { stop(): void } | undefined;
  private answeredFd: number | undefined;
  readonly finished: Promise<RelayReport>;
  /** Resolves once the source has heard that every page arrived (after `finished`; only over a connected link). */
  readonly sourceReleased: Promise<void>;
  private resolveReleased!: () => void;
  private settle!: { resolve: (r: RelayReport) => void; reject: (e: unknown) => void };

  private constructor(private readonly options: PageRelayOptions) {
    this.requester = new LinkRequester({ session: options.migrationId, onEvent: (e) => options.onEvent?.(e) });
    this.finished = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.finished.catch(() => undefined);
    this.sourceReleased = new Promise((resolve) => (this.resolveReleased = resolve));
  }

  static async start(options: PageRelayOptions): Promise<PageRelay> {
    const relay = new PageRelay(options);
    try {
      await relay.begin();
      return relay;
    } catch (error) {
      relay.shutdown();
      throw error;
    }
  }

  /** Hands the relay a link connection from the source (in-process use; sockets on dir/link.sock come by themselves). */
  attachLink(stream: Duplex): void {
    this.requester.attach(stream);
  }

  get linkConnected(): boolean {
    return this.requester.connected;
  }

  private async begin(): Promise<void> {
    const { options } = this;
    ensurePrivateDir(options.dir);
    const daemonWork = join(options.dir, 'daemon');
    ensurePrivateDir(daemonWork);

    const lazy = await lazyRanges(options.imagesDir);
    if (options.localChain) this.chain = await ChainPageStore.open(options.localChain);
    // A successor skips what the daemon has taken already (the log may lack the last answer: that one comes again).
    const delivered = readAnswered(join(options.dir, ANSWERED_LOG));
    this.answeredFd = openSync(join(options.dir, ANSWERED_LOG), 'a', 0o600);
    const missing = new Map<number, Interval[]>();
    let localPages = 0;
    for (const [pid, ranges] of lazy.tasks) {
      const wanted = ranges.map((r): Interval => [pageOf(r.vaddr), pageOf(r.vaddr) + r.nrPages]);
      const notLocal = subtract(wanted, this.chain?.held(pid) ?? []);
      const left = subtract(notLocal, delivered.get(pid) ?? []);
      const leftPages = left.reduce((n, [s, e]) => n + e - s, 0);
      localPages += wanted.reduce((n, [s, e]) => n + e - s, 0) - notLocal.reduce((n, [s, e]) => n + e - s, 0);
      this.remotePages += leftPages;
      if (left.length > 0) missing.set(pid, left);
    }
    if (options.localOnly && this.remotePages > 0) {
      throw new FerryError('ERR_AGENT_FAILED', `a lazy restore from this host's pages lacks ${this.remotePages} page(s) the pre-copy rounds did not bring`, {
        hint: 'The source resumes; migrate again (or without --lazy-restore).',
      });
    }
    this.puller = new PagePuller(this.requester, missing, this.fetched, options.pull);

    // The link: the source dials dir/link.sock (through SSH); the directory's mode keeps everyone else out. A
    // predecessor's socket file (takeover) is ours to replace.
    const linkPath = join(options.dir, LINK_SOCKET);
    if (lstatSync(linkPath, { throwIfNoEntry: false })?.isSocket()) unlinkSync(linkPath);
    if (!options.localOnly) {
      this.listener = listenUnix(linkPath, 4);
      void this.acceptLinks(this.listener);
    }

    if (options.localOnly && !options.takeover && lazyPagesHandler() === 'ferry') {
      this.ownHandler = await startOwnHandler({ imagesDir: options.imagesDir, restoreWorkDir: options.restoreWorkDir, store: this.chain!, lazy, onEvent: options.onEvent });
      void this.serveOwn(this.ownHandler);
      options.onEvent?.({ type: 'relay-ready', daemonPid: process.pid, localPages, remotePages: 0, takeover: false });
      return;
    }
    const daemon = options.takeover
      ? adoptRelayDaemon(readDaemonRecord(options.dir))
      : await startRelayDaemon({ criuPath: options.criuPath ?? 'criu', imagesDir: options.imagesDir, workDir: daemonWork, recordDir: options.dir });
    this.daemon = daemon;
    if (!options.takeover) {
      const proxy = UffdProxy.listen({ restoreWorkDir: options.restoreWorkDir, daemonWorkDir: daemonWork });
      this.proxy = proxy;
      proxy.relay().then(
        ({ tasks }) => options.onEvent?.({ type: 'restore-attached', tasks }),
        (error: unknown) => this.lose(`the restore's lazy-pages socket: ${(error as Error).message}`),
      );
    }
    // Copies of the daemon's userfaultfds (forked tasks' too): its death then blocks faults instead of zeroing.
    this.proxy ??= UffdProxy.holdOnly();
    const daemonId = processId(daemon.pid);
    this.holding = daemonId ? this.proxy.keepHolding(daemonId) : undefined;
    this.puller.start();
    void this.serve(daemon);
    options.onEvent?.({ type: 'relay-ready', daemonPid: daemon.pid, localPages, remotePages: this.remotePages, takeover: options.takeover === true });
  }

  /** Each connection the source makes (through sshd) replaces the previous one. Waits in short slices on the pool. */
  private async acceptLinks(listener: FdHandle): Promise<void> {
    while (this.listener === listener) {
      try {
        this.requester.attachSocket(StreamSocket.adopt(await acceptSocket(listener, 500)));
      } catch (error) {
        if ((error as { code?: string }).code !== 'ETIMEDOUT' && this.listener === listener) {
          this.options.onEvent?.({ type: 'link-down', reason: `accepting: ${(error as Error).message}`, outstanding: this.requester.pending });
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }

  private async serve(daemon: RelayDaemon): Promise<void> {
    const stores = (): PageStore[] => (this.chain ? [this.chain, this.fetched] : [this.fetched]);
    const pages = async (get: DaemonGet, exact?: number): Promise<Buffer> => {
      const first = pageOf(get.vaddr);
      const want = exact ?? get.nrPages;
      for (;;) {
        const run = localRun(stores(), get.pid, first, want);
        if (run >= want || (run > 0 && exact === undefined)) return readLocal(stores(), get.pid, first, run);
        const page = first + run;
        await this.puller.want(get.pid, page);
        if (localRun(stores(), get.pid, page, 1) === 0) {
          // Not among the pages the dump left for later: ask the source directly (the daemon knows best).
          const data = await this.requester.get({ pid: get.pid, vaddr: addressOf(page), nrPages: 1, urgent: true });
          this.fetched.add(get.pid, page, data);
        }
      }
    };
    let progress = 0;
    const record = Buffer.alloc(16);
    const answered = (get: DaemonGet, nr: number) => {
      this.fetched.taken(get.pid, pageOf(get.vaddr), nr);
      record.writeUInt32LE(get.pid, 0);
      record.writeUInt32LE(nr, 4);
      record.writeBigUInt64LE(get.vaddr / BigInt(PAGE), 8);
      writeSync(this.answeredFd!, record);
      this.puller.kick();
      if (Date.now() - progress > 1000) {
        progress = Date.now();
        this.options.onEvent?.({ type: 'pull-progress', pagesFetched: this.puller.stats.pagesFetched, remainingPages: this.puller.remainingPages });
      }
    };
    let result;
    try {
      result = await serveDaemon({ socket: daemon.socket, stateFile: join(this.options.dir, 'daemon-stream.state') }, { pages, answered });
    } catch (error) {
      if ((error as FerryError).code === 'ERR_POSTCOPY_SOURCE_LOST') {
        this.options.onEvent?.({ type: 'source-lost', message: (error as Error).message });
        return this.fail(error);
      }
      return this.lose(`serving the daemon: ${(error as Error).message}`);
    }
    const exit = await daemon.exited;
    if (result.end !== 'close' || !exit.clean) return this.lose(`the lazy-pages daemon ${exit.how} (log: ${daemon.logPath})`);
    // Every page is in the restored tasks: the copies of their userfaultfds can go, and the source may end.
    this.proxy?.close();
    this.puller.stop();
    const pull = this.puller.stats;
    const pullMs = pull.startedAt !== undefined && pull.finishedAt !== undefined ? pull.finishedAt - pull.startedAt : undefined;
    const report: RelayReport = {
      pagesAnswered: result.pagesAnswered,
      daemonRequests: result.requests,
      remotePages: this.remotePages,
      pull,
      pullMs,
      pullMiBps: pullMs ? (pull.pagesFetched * PAGE) / (1 << 20) / (pullMs / 1000) : undefined,
    };
    this.options.onEvent?.({ type: 'daemon-finished', report });
    this.settle.resolve(report);
    if (this.options.localOnly) {
      this.shutdown({ keepUffds: false });
      return this.resolveReleased();
    }
    // The source learns it over the link (now, or when it next connects), and may end its copy once it has heard.
    this.requester.finish().then(
      () => {
        this.options.onEvent?.({ type: 'source-released' });
        this.shutdown({ keepUffds: false });
        this.resolveReleased();
      },
      () => undefined,
    );
  }

  /** A lazy restore served by ferry's own handler (no CRIU daemon): its end is the relay's. */
  private async serveOwn(own: OwnHandler): Promise<void> {
    let filled;
    try {
      filled = await own.handler.finished;
    } catch (error) {
      return this.lose(`ferry's lazy-pages handler: ${(error as Error).message}`);
    }
    const report: RelayReport = {
      pagesAnswered: filled.pagesCopied,
      daemonRequests: filled.faults,
      remotePages: 0,
      pull: this.puller.stats,
      handler: { ...filled },
    };
    this.options.onEvent?.({ type: 'daemon-finished', report });
    this.settle.resolve(report);
    this.shutdown({ keepUffds: false });
    this.resolveReleased();
  }

  private lose(reason: string): void {
    this.options.onEvent?.({ type: 'daemon-lost', reason, uffdsHeld: this.ownHandler?.handler.held ?? this.proxy?.held ?? 0 });
    this.fail(new FerryError('ERR_POSTCOPY_DAEMON_LOST', `post-copy: ${reason}`, { hint: 'The restored copy waits on pages it will never get: kill it (before the commit, the source resumes).' }));
  }

  private fail(error: unknown): void {
    this.puller?.stop();
    this.requester.close(error);
    this.settle.reject(error);
  }

  /** Drops the copies of the userfaultfds: only once the restored tasks are dead (after a failure) or done. */
  release(): void {
    this.shutdown({ keepUffds: false });
  }

  /** Stops the link and the watch; kills nothing. */
  private shutdown({ keepUffds }: { keepUffds: boolean } = { keepUffds: true }): void {
    this.holding?.stop();
    this.listener?.close();
    this.listener = undefined;
    this.requester.close();
    this.chain?.close();
    if (this.answeredFd !== undefined) closeSync(this.answeredFd);
    this.answeredFd = undefined;
    if (!keepUffds) {
      this.proxy?.close();
      this.daemon?.close();
      this.ownHandler?.close();
    }
  }

  /** Kills the daemon (rollback); the owner kills the restored tasks, then release(). */
  killDaemon(): void {
    this.daemon?.kill();
    this.ownHandler?.handler.stop(); // its userfaultfds stay open: faulting tasks block until release()
  }
}
