/**
 * ferry's own lazy-pages handler, for a lazy restore whose pages are all on this host (hash-pre-copy's
 * `--lazy-restore`: the pre-copy chain holds every page). It takes CRIU's lazy-pages daemon's place on the restore's
 * lazy-pages.socket (UffdProxy.receive) and resolves the restored tasks' userfaults itself: faults first, in 64 KiB
 * copies from the chain, and everything else in 4 MiB copies right after the restore, whatever the faults (CRIU
 * 4.2.1's daemon drops its background copies to 64 KiB at every fault and keeps one in flight: a 1 GiB fill under a
 * writing workload took a minute, docs/page-paths.md).
 *
 * What it must get right (criu/uffd.c does the same): a fault on a page that is not to do gets a zero page (never
 * touched, or dropped); REMOVE (MADV_DONTNEED) unregisters the range and forgets it, so no old content comes back
 * over memory the task expects zeroed; UNMAP forgets it; REMAP moves it, pages in flight included; FORK gives the child
 * (a new userfaultfd) what was to do in the parent, pages in flight included. A copy never overwrites (EEXIST) and
 * one that stopped short wakes what it covered itself (the kernel only wakes on a whole copy). A copy that meets a
 * VMA boundary or a hole (ENOENT) is retried in halves, so a split VMA loses nothing; a task gone (ESRCH) is done.
 *
 * Crash behaviour: this handler lives in the relay process, which holds every userfaultfd; killed, its faulting
 * tasks block on the agent's copies (local-page-fill.ts guardUffds) until the agent removes the copy.
 */
import { pollUffds, Userfaultfd, type UffdMessage, type UffdResult } from '@ferry/core';
import { LazyTodo, type TodoRange } from './lazy-todo';
import { addressOf, PAGE, pageOf, type PageStore } from './page-store';

/** Pages copied for a fault (from the faulting page on, within its range). */
export const FAULT_PAGES = 16;
/** Pages per background copy. */
export const FILL_PAGES = 1024;

interface Task {
  /** Pid in the images (a forked child keeps its parent's: its content is the parent's image). */
  imgPid: number;
  uffd: Userfaultfd;
  todo: LazyTodo;
  /** Ranges read from the store, not yet copied in: shifted by REMAP, given to a FORK's child. */
  inFlight: Set<TodoRange>;
  gone: boolean;
}

export interface LocalLazyPagesReport {
  pagesCopied: number;
  faults: number;
  zeroPages: number;
  forks: number;
  /** Pages dropped by MADV_DONTNEED or munmap, and moved by mremap, while they were still to do. */
  removed: number;
  remapped: number;
  /** From restore finished to every page in. */
  fillMs: number;
}

export interface LocalLazyPagesOptions {
  store: PageStore;
  /** Per task (pid in the images): its to-do ranges (todoFromImages). */
  plan: ReadonlyMap<number, readonly TodoRange[]>;
  log?(line: string): void;
  /** How to wait for messages (tests give fakes; default pollUffds). */
  poll?: (uffds: readonly Userfaultfd[], timeoutMs: number) => Promise<Userfaultfd[]>;
  /** How a fork message's userfaultfd becomes a Userfaultfd (tests; default the class). */
  adopt?: (handle: Extract<UffdMessage, { event: 'fork' }>['uffd']) => Userfaultfd;
}

export class LocalLazyPages {
  private readonly tasks: Task[] = [];
  private stopped = false;
  /** When the restore said it finished (0: not yet): the background fill starts then. */
  private restoreFinishedAt = 0;
  private readonly stats = { pagesCopied: 0, faults: 0, zeroPages: 0, forks: 0, removed: 0, remapped: 0 };
  readonly finished: Promise<LocalLazyPagesReport>;
  private settle!: { resolve: (r: LocalLazyPagesReport) => void; reject: (e: unknown) => void };
  private wakeFill: (() => void) | undefined;

  constructor(private readonly options: LocalLazyPagesOptions) {
    this.finished = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.finished.catch(() => undefined);
    void this.serveEvents().catch((error: unknown) => this.fail(error));
  }

  /** The restore sent task `pid`'s userfaultfd (this handler owns it from here on). */
  addTask(pid: number, uffd: Userfaultfd): void {
    const ranges = this.options.plan.get(pid) ?? [];
    this.tasks.push({ imgPid: pid, uffd, todo: new LazyTodo(ranges), inFlight: new Set(), gone: false });
  }

  /** The restore has finished: the background fill starts (CRIU's daemon waits for this too). */
  restoreFinished(): void {
    this.restoreFinishedAt = Date.now();
    void this.fill().catch((error: unknown) => this.fail(error));
  }

  /** The restore broke off before it finished: the fill fails (the owner removes the copy, then close()). */
  abandon(reason: string): void {
    this.fail(new Error(reason));
  }

  /** Stops serving; the userfaultfds stay open (faulting tasks block) until close(). */
  stop(): void {
    this.stopped = true;
    this.wakeFill?.();
  }

  /** Closes every userfaultfd: only once every page is in, or the restored tasks are dead. */
  close(): void {
    this.stop();
    for (const t of this.tasks) t.uffd.close();
  }

  get held(): number {
    return this.tasks.filter((t) => !t.uffd.handle.closed).length;
  }

  private fail(error: unknown): void {
    this.stopped = true;
    this.settle.reject(error);
  }

  private get done(): boolean {
    return this.restoreFinishedAt > 0 && this.tasks.every((t) => t.gone || (t.todo.empty && t.inFlight.size === 0));
  }

  private async serveEvents(): Promise<void> {
    while (!this.stopped) {
      const live = this.tasks.filter((t) => !t.gone).map((t) => t.uffd);
      const poll = this.options.poll ?? pollUffds;
      const ready = live.length === 0 ? (await new Promise((r) => setTimeout(r, 20)), []) : await poll(live, 100);
      for (const uffd of ready) {
        const task = this.tasks.find((t) => t.uffd === uffd);
        if (!task || task.gone || this.stopped) continue;
        const messages = uffd.read();
        if (messages === null) {
          this.forget(task);
          continue;
        }
        // Non-fault events first, in order and synchronously: no copy may run between reading them and acting.
        const faults: bigint[] = [];
        for (const m of messages) {
          if (m.event === 'pagefault') faults.push(m.address);
          else this.onEvent(task, m);
        }
        for (const address of faults) await this.onFault(task, address);
      }
      if (this.done) this.finish();
    }
  }

  private onEvent(task: Task, m: Exclude<UffdMessage, { event: 'pagefault' }>): void {
    switch (m.event) {
      case 'remove': {
        // MADV_DONTNEED: the task expects zeros there from now on; faults there are the kernel's again.
        const r = task.uffd.unregister(m.start, m.end - m.start);
        if (r.errno === 'ENOMEM' || r.errno === 'ESRCH') return this.forget(task);
        this.dropPages(task, m.start, m.end);
        return;
      }
      case 'unmap':
        return this.dropPages(task, m.start, m.end);
      case 'remap': {
        const from = pageOf(m.from);
        const to = pageOf(m.to);
        const len = pageOf(m.len);
        this.stats.remapped += len;
        task.todo.remap(from, to, len);
        for (const r of task.inFlight) {
          if (r.start >= from && r.end <= from + len) {
            // Wholly moved: its copy goes to the new place.
            r.start += to - from;
            r.end += to - from;
          } else if (r.start < from + len && r.end > from) {
            // Partly moved: the moved part is to do again at its new place (its old place has no VMA: ENOENT there).
            const s = Math.max(r.start, from);
            const e = Math.min(r.end, from + len);
            task.todo.add([{ start: s - from + to, end: e - from + to, img: r.img + (s - r.start) }]);
          }
        }
        return;
      }
      case 'fork': {
        const child = task.todo.clone();
        child.add([...task.inFlight]);
        this.tasks.push({ imgPid: task.imgPid, uffd: this.options.adopt ? this.options.adopt(m.uffd) : new Userfaultfd(m.uffd), todo: child, inFlight: new Set(), gone: false });
        this.stats.forks++;
        this.wakeFill?.();
        return;
      }
      default:
        this.options.log?.(`lazy pages: unknown userfaultfd event ${m.code}`);
    }
  }

  private dropPages(task: Task, start: bigint, end: bigint): void {
    const s = pageOf(start);
    const e = pageOf(end + BigInt(PAGE - 1));
    const before = task.todo.pages;
    task.todo.drop(s, e);
    this.stats.removed += before - task.todo.pages;
    // A copy in flight there will find no VMA or an unregistered one (ENOENT) and is dropped then.
  }

  private forget(task: Task): void {
    task.gone = true;
    task.uffd.close();
  }

  private async onFault(task: Task, address: bigint): Promise<void> {
    this.stats.faults++;
    return this.serveFault(task, pageOf(address));
  }

  /** Resolves a fault on `page` (again, when its copy was refused while the layout changed: not a new fault). */
  private async serveFault(task: Task, page: number): Promise<void> {
    for (const r of task.inFlight) if (page >= r.start && page < r.end) return; // its copy wakes the task
    const range = task.todo.takeAt(page, FAULT_PAGES);
    if (range) return this.copyIn(task, range, true);
    const r = task.uffd.zeropage(addressOf(page), BigInt(PAGE));
    if (r.errno === 'ESRCH' || r.errno === 'ENOSPC') return this.forget(task);
    if (r.errno) task.uffd.wake(addressOf(page), BigInt(PAGE)); // EEXIST: there already; the waiter retries
    else this.stats.zeroPages++;
  }

  /**
   * Reads `range` from the store and copies it in; ranges that moved meanwhile (REMAP) go where they went. A copy
   * refused while the task's layout changes (EAGAIN: an event not yet read) goes back to the to-do list; for a fault it
   * is retried at once.
   */
  private async copyIn(task: Task, range: TodoRange, fault = false): Promise<void> {
    task.inFlight.add(range);
    let data: Buffer;
    try {
      data = await this.options.store.read(task.imgPid, range.img, range.end - range.start);
    } finally {
      task.inFlight.delete(range);
    }
    if (task.gone) return;
    const again = this.place(task, range, data);
    if (again.length === 0) return;
    task.todo.add(again);
    if (fault) setTimeout(() => void this.serveFault(task, range.start).catch((error: unknown) => this.fail(error)), 1);
    else this.wakeFill?.();
  }

  /**
   * UFFDIO_COPY of data to `range`; on ENOENT in halves, so only what has no registered VMA is skipped. Returns what
   * must be copied again later (EAGAIN).
   */
  private place(task: Task, range: TodoRange, data: Buffer): TodoRange[] {
    const r: UffdResult = task.uffd.copy(addressOf(range.start), data);
    const pages = range.end - range.start;
    const done = r.bytes / PAGE;
    this.stats.pagesCopied += done;
    if (!r.errno) return [];
    if (r.errno === 'ESRCH' || r.errno === 'ENOSPC') {
      this.forget(task);
      return [];
    }
    task.uffd.wake(addressOf(range.start), BigInt(data.length)); // a short copy wakes nobody by itself
    const from = (offset: number, end = pages): TodoRange => ({ start: range.start + offset, end: range.start + end, img: range.img + offset });
    const sub = (part: TodoRange) => data.subarray((part.start - range.start) * PAGE, (part.end - range.start) * PAGE);
    if (r.errno === 'EAGAIN') return [from(done)];
    if (r.errno === 'EEXIST') {
      // Page start + done is there already (never overwritten); the rest still goes in.
      if (done + 1 >= pages) return [];
      const rest = from(done + 1);
      return this.place(task, rest, sub(rest));
    }
    if (r.errno === 'ENOENT' || r.errno === 'EINVAL') {
      if (pages - done <= 1) return []; // no registered VMA here (unmapped, or dropped with MADV_DONTNEED)
      const half = done + Math.floor((pages - done) / 2);
      const low = from(done, half);
      const high = from(half);
      return [...this.place(task, low, sub(low)), ...this.place(task, high, sub(high))];
    }
    throw new Error(`UFFDIO_COPY at page ${range.start} (${pages} pages): ${r.errno}`);
  }

  private async fill(): Promise<void> {
    while (!this.stopped) {
      const task = this.tasks.find((t) => !t.gone && !t.todo.empty);
      if (!task) {
        if (this.done) return this.finish();
        await new Promise<void>((resolve) => {
          this.wakeFill = resolve;
          setTimeout(resolve, 50);
        });
        continue;
      }
      const range = task.todo.takeFirst(FILL_PAGES)!;
      await this.copyIn(task, range);
    }
  }

  private finish(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.tasks) t.uffd.close();
    this.settle.resolve({ ...this.stats, fillMs: Date.now() - this.restoreFinishedAt });
  }
}
