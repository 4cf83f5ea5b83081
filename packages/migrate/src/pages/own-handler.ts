/**
 * Which lazy-pages handler serves a lazy restore from this host's pages, and ferry's own one started: the restore's
 * userfaultfds taken on its lazy-pages.socket (UffdProxy.receive), each task's to-do pages from the lazy dump's
 * pagemaps cut at its VMAs (mm-PID.img), the content from the pre-copy chain.
 *
 * `FERRY_LAZY_PAGES=criu` in the relay's environment (the destination agent's) keeps CRIU's own lazy-pages daemon,
 * answered by the relay: the benchmark's side-by-side variant.
 */
import { join } from 'node:path';
import { readVmaBounds, Userfaultfd, type LazyRanges } from '@ferry/core';
import { LocalLazyPages } from './local-lazy-pages';
import { todoFromImages, type TodoRange } from './lazy-todo';
import { pageOf, type PageStore } from './page-store';
import { UffdProxy } from './uffd-proxy';
import type { RelayEvent } from './relay';

export function lazyPagesHandler(env: NodeJS.ProcessEnv = process.env): 'ferry' | 'criu' {
  return env.FERRY_LAZY_PAGES === 'criu' ? 'criu' : 'ferry';
}

export interface OwnHandler {
  handler: LocalLazyPages;
  /** Closes the listener (if the restore never came) and every userfaultfd. */
  close(): void;
}

export async function startOwnHandler(options: {
  imagesDir: string;
  restoreWorkDir: string;
  store: PageStore;
  lazy: LazyRanges;
  onEvent?: (event: RelayEvent) => void;
}): Promise<OwnHandler> {
  const plan = new Map<number, TodoRange[]>();
  for (const [pid, ranges] of options.lazy.tasks) {
    const vmas = (await readVmaBounds(join(options.imagesDir, `mm-${pid}.img`))).map((v): [number, number] => [pageOf(v.start), pageOf(v.end)]);
    plan.set(pid, todoFromImages(ranges.map((r): [number, number] => [pageOf(r.vaddr), pageOf(r.vaddr) + r.nrPages]), vmas));
  }
  const handler = new LocalLazyPages({ store: options.store, plan });
  const proxy = UffdProxy.listen({ restoreWorkDir: options.restoreWorkDir });
  proxy.receive((pid, fd) => handler.addTask(pid, new Userfaultfd(fd))).then(
    ({ tasks }) => {
      options.onEvent?.({ type: 'restore-attached', tasks });
      handler.restoreFinished();
    },
    (error: unknown) => handler.abandon(`the restore's lazy-pages socket: ${(error as Error).message}`),
  );
  return {
    handler,
    close: () => {
      proxy.close();
      handler.close();
    },
  };
}
