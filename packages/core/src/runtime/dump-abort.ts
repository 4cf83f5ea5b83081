/**
 * The abort a dump tool (runc checkpoint, lxc-checkpoint) gets. CRIU cannot be stopped safely while it holds the
 * tasks it dumps: compel runs injected syscalls and the parasite inside them, and each ends in a trap that only a
 * living tracer catches, so a CRIU killed at that moment can take the task down with it (the two-VM suite lost a
 * container this way: `ferry migrate` killed during a pre-copy round, the guardian's abort killed the pre-dump).
 *
 * So an abort never kills a dump that ends by itself (a pre-dump, a dump leaving the tasks running, an ordinary dump):
 * it runs to its end or to its deadline, and the caller turns the abort into ERR_ABORTED afterwards. A lazy dump is
 * killed once it is ready: its parasite is gone by then, and it would otherwise serve pages until a client is done.
 */
export function dumpToolSignal(signal: AbortSignal | undefined, lazyReady: Promise<void> | undefined): { signal?: AbortSignal; done(): void } {
  if (!signal || !lazyReady) return { done: () => undefined };
  const tool = new AbortController();
  const abortOnceReady = () => void lazyReady.then(() => tool.abort(signal.reason));
  if (signal.aborted) abortOnceReady();
  else signal.addEventListener('abort', abortOnceReady, { once: true });
  // The move's signal outlives the dump (a replication runs one dump after another on it): done() lets go of it.
  return { signal: tool.signal, done: () => signal.removeEventListener('abort', abortOnceReady) };
}
