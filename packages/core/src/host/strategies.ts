/**
 * Which migration strategies a host supports, decided from probed facts. Pure, so the decision is unit-tested
 * against fact sets of hosts we do not have.
 */
export type StrategyName = 'stop-and-copy' | 'pre-copy' | 'hash-pre-copy' | 'post-copy';

export interface StrategyInputs {
  criuUsable: boolean;
  memTrack: boolean;
  lazyPages: boolean;
  pipeMaxSizeBytes: number | undefined;
  /** ferry can read other processes' memory and page maps (process_vm_readv, /proc/PID/pagemap). */
  memoryRead: boolean;
}

export interface StrategyVerdict {
  name: StrategyName;
  available: boolean;
  /** Why it is not available (or a caveat when it is). */
  reason?: string;
}

/** CRIU's lazy-pages transfer grows a pipe to ~3.3 MB; without CAP_SYS_RESOURCE the sysctl must allow it. */
export const LAZY_PAGES_MIN_PIPE_BYTES = 4 * 1024 * 1024;

/** Which migration strategies this host can run, each with the reason when it cannot (pure). */
export function strategiesFor(facts: StrategyInputs): StrategyVerdict[] {
  if (!facts.criuUsable) {
    const reason = 'CRIU >= 4.2 is not usable on this host';
    return (['stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'] as const).map((name) => ({ name, available: false, reason }));
  }
  const verdicts: StrategyVerdict[] = [{ name: 'stop-and-copy', available: true }];
  verdicts.push(
    facts.memTrack
      ? { name: 'pre-copy', available: true }
      : {
          name: 'pre-copy',
          available: false,
          reason: 'no memory tracking: the kernel lacks soft-dirty bits (CONFIG_MEM_SOFT_DIRTY), so CRIU cannot pre-dump',
        },
  );
  verdicts.push(
    facts.memoryRead
      ? { name: 'hash-pre-copy', available: true, reason: facts.memTrack ? undefined : 'ferry reads and hashes memory itself: pre-copy without kernel memory tracking' }
      : { name: 'hash-pre-copy', available: false, reason: 'ferry cannot read other processes\' memory here (process_vm_readv or /proc/PID/pagemap refused; needs root / CAP_SYS_PTRACE)' },
  );
  if (!facts.lazyPages) {
    verdicts.push({ name: 'post-copy', available: false, reason: 'no lazy pages: the kernel lacks userfaultfd support CRIU needs' });
  } else if ((facts.pipeMaxSizeBytes ?? 0) < LAZY_PAGES_MIN_PIPE_BYTES) {
    verdicts.push({
      name: 'post-copy',
      available: false,
      reason: `fs.pipe-max-size is ${facts.pipeMaxSizeBytes ?? 'unknown'}, CRIU lazy pages need >= ${LAZY_PAGES_MIN_PIPE_BYTES} (sysctl -w fs.pipe-max-size=${LAZY_PAGES_MIN_PIPE_BYTES})`,
    });
  } else {
    verdicts.push({ name: 'post-copy', available: true });
  }
  return verdicts;
}
