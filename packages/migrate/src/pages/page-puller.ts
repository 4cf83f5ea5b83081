/**
 * The destination relay's background pull (#15): every page the restore will need that the destination does not
 * hold yet is fetched from the source in large batches with several GETs in flight, instead of CRIU's one request at
 * a time. A page a restored task faults on is fetched at once, ahead of the batches (want()), and the batches then
 * continue from where the daemon is reading, so what it asks next is most likely here already.
 */
import type { GetRequest } from './link-frames';
import { addressOf, FetchedPages, PAGE } from './page-store';
import { subtract, union, type Interval } from '../precopy/page-intervals';

export interface PullPolicy {
  /** Pages per bulk GET. Default 256 (1 MiB). */
  batchPages: number;
  /** Bulk GETs in flight. Default 8. */
  inFlight: number;
  /** Pages fetched at once for a page the daemon waits for (from that page on). Default 16. */
  urgentPages: number;
  /** Fetched pages not yet taken by the daemon, at most, before the bulk pull pauses. Default 256 MiB. */
  maxBufferedBytes: number;
}

export const DEFAULT_PULL_POLICY: Readonly<PullPolicy> = { batchPages: 256, inFlight: 8, urgentPages: 16, maxBufferedBytes: 256 << 20 };

export interface PullStats {
  pagesFetched: number;
  bulkGets: number;
  urgentGets: number;
  /** ms timestamps of the first GET and of the last page in. */
  startedAt?: number;
  finishedAt?: number;
}

interface InFlight {
  pid: number;
  first: number;
  end: number;
  urgent: boolean;
  done: Promise<void>;
}

export interface PageLink {
  get(request: GetRequest): Promise<Buffer>;
}

export class PagePuller {
  private readonly pending = new Map<number, Interval[]>();
  private readonly inflight: InFlight[] = [];
  private bulkInFlight = 0;
  private hint: { pid: number; page: number } | undefined;
  private failed: unknown;
  private stopped = false;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  readonly done: Promise<void>;
  readonly stats: PullStats = { pagesFetched: 0, bulkGets: 0, urgentGets: 0 };
  private readonly policy: PullPolicy;

  constructor(
    private readonly link: PageLink,
    missing: ReadonlyMap<number, readonly Interval[]>,
    private readonly store: FetchedPages,
    policy: Partial<PullPolicy> = {},
  ) {
    this.policy = { ...DEFAULT_PULL_POLICY, ...policy };
    for (const [pid, intervals] of missing) if (intervals.length > 0) this.pending.set(pid, union([], intervals));
    this.done = new Promise((resolve, reject) => ((this.resolveDone = resolve), (this.rejectDone = reject)));
    this.done.catch(() => undefined);
  }

  /** Pages not fetched yet (requested or not). */
  get remainingPages(): number {
    let n = 0;
    for (const list of this.pending.values()) for (const [s, e] of list) n += e - s;
    for (const f of this.inflight) n += f.end - f.first;
    return n;
  }

  start(): void {
    this.pump();
  }

  /** Stops issuing GETs (those in flight still land). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Resolves once page `first` of `pid` has been fetched (at once if it never was missing). If nobody asked for it
   * yet, it and the pages after it (up to urgentPages) are fetched ahead of the bulk pull; the bulk pull then goes on
   * from there.
   */
  async want(pid: number, first: number): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    this.hint = { pid, page: first };
    const flying = this.inflight.find((f) => f.pid === pid && f.first <= first && first < f.end);
    if (flying) return flying.done;
    const list = this.pending.get(pid) ?? [];
    const piece = list.find(([s, e]) => s <= first && first < e);
    if (!piece) return; // held already (or never needed)
    const end = Math.min(piece[1], first + this.policy.urgentPages);
    this.stats.urgentGets++;
    return this.fetch(pid, first, end, true);
  }

  /** The daemon took pages: room for more in the buffer. */
  kick(): void {
    this.pump();
  }

  private fetch(pid: number, first: number, end: number, urgent: boolean): Promise<void> {
    const left = subtract(this.pending.get(pid) ?? [], [[first, end]]);
    if (left.length > 0) this.pending.set(pid, left);
    else this.pending.delete(pid);
    this.stats.startedAt ??= Date.now();
    const done = this.link.get({ pid, vaddr: addressOf(first), nrPages: end - first, urgent }).then(
      (data) => {
        this.store.add(pid, first, data);
        this.stats.pagesFetched += end - first;
        this.finish(entry);
      },
      (error: unknown) => {
        this.fail(error);
        this.finish(entry);
        throw error;
      },
    );
    const entry: InFlight = { pid, first, end, urgent, done };
    this.inflight.push(entry);
    if (!urgent) this.bulkInFlight++;
    return done;
  }

  private finish(entry: InFlight): void {
    const i = this.inflight.indexOf(entry);
    if (i >= 0) this.inflight.splice(i, 1);
    if (!entry.urgent) this.bulkInFlight--;
    this.pump();
  }

  private fail(error: unknown): void {
    if (this.failed !== undefined) return;
    this.failed = error;
    this.rejectDone(error);
  }

  private pump(): void {
    if (this.pending.size === 0 && this.inflight.length === 0 && this.failed === undefined) {
      this.stats.finishedAt ??= Date.now();
      this.resolveDone();
      return;
    }
    while (!this.stopped && this.failed === undefined && this.bulkInFlight < this.policy.inFlight) {
      const buffered = this.store.bytes + this.inflight.reduce((n, f) => n + (f.end - f.first) * PAGE, 0);
      if (buffered >= this.policy.maxBufferedBytes) return;
      const next = this.nextBatch();
      if (!next) return;
      this.stats.bulkGets++;
      this.fetch(next.pid, next.first, next.end, false).catch(() => undefined);
    }
  }

  /** The next bulk batch: from the daemon's last position if anything is left there, else the lowest pending page. */
  private nextBatch(): { pid: number; first: number; end: number } | undefined {
    const take = (pid: number, [s, e]: Interval) => ({ pid, first: s, end: Math.min(e, s + this.policy.batchPages) });
    if (this.hint) {
      const list = this.pending.get(this.hint.pid) ?? [];
      const piece = list.find(([, e]) => e > this.hint!.page);
      if (piece) return take(this.hint.pid, [Math.max(piece[0], this.hint.page), piece[1]]);
    }
    for (const [pid, list] of this.pending) if (list.length > 0) return take(pid, list[0]!);
    return undefined;
  }
}
