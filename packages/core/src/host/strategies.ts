/**
 * Which migration strategies can run, decided from probed facts: the one rule that both `ferry doctor` (this host as
 * either end) and the migration planner (this host to that one, with this runtime) apply. Pure, so the decision is
 * unit-tested against fact sets of hosts we do not have.
 */
export type StrategyName = 'stop-and-copy' | 'pre-copy' | 'hash-pre-copy' | 'post-copy';
export const STRATEGY_NAMES: readonly StrategyName[] = ['stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'];

export interface StrategyInputs {
  criuUsable: boolean;
  memTrack: boolean;
  lazyPages: boolean;
  pipeMaxSizeBytes: number | undefined;
  /** ferry can read other processes' memory and page maps (process_vm_readv, /proc/PID/pagemap). */
  memoryRead: boolean;
}

/** What a runtime adapter can do (RuntimeAdapter.features); absent fields mean yes. */
export interface RuntimeStrategyFeatures {
  lazyPages?: boolean;
  preDump?: boolean;
  /**
   * Restores hash-pre-copy lazily from the pages the destination holds (ferry's own lazy-pages handler on the
   * restore's socket). `auto` takes it only where this is not false; `--lazy-restore` asks for it on any runtime
   * with lazy pages.
   */
  lazyRestore?: boolean;
}

export interface StrategyVerdict {
  name: StrategyName;
  available: boolean;
  /** Why it is not available (or a caveat when it is). */
  reason?: string;
}

/** CRIU's lazy-pages transfer grows a pipe to ~3.3 MB; without CAP_SYS_RESOURCE the sysctl must allow it. */
export const LAZY_PAGES_MIN_PIPE_BYTES = 4 * 1024 * 1024;

type HostNeed = 'criu' | 'memTrack' | 'lazyPages' | 'pipe' | 'memoryRead';
type RuntimeNeed = 'preDump' | 'lazyPages';

/**
 * What each end needs. Only the source pre-dumps (the destination restores chained images, which any CRIU reads);
 * hash-pre-copy's frozen step is a lazy dump on the source (ferry reads the pages itself) restored eagerly; post-copy
 * dumps lazily on the source and restores lazily on the destination. CRIU holds lazily dumped pages in pipes, hence
 * the pipe sysctl wherever a lazy dump or a lazy restore runs.
 */
const NEEDS: Record<StrategyName, { source: HostNeed[]; destination: HostNeed[]; runtime: RuntimeNeed[] }> = {
  'stop-and-copy': { source: ['criu'], destination: ['criu'], runtime: [] },
  'pre-copy': { source: ['criu', 'memTrack'], destination: ['criu'], runtime: ['preDump'] },
  'hash-pre-copy': { source: ['criu', 'memoryRead', 'lazyPages', 'pipe'], destination: ['criu'], runtime: ['lazyPages'] },
  'post-copy': { source: ['criu', 'lazyPages', 'pipe'], destination: ['criu', 'lazyPages', 'pipe'], runtime: ['lazyPages'] },
};

const NEED_LABELS: Record<HostNeed, string> = {
  criu: 'a usable CRIU >= 4.2',
  memTrack: 'CRIU memory tracking (soft-dirty bits, CONFIG_MEM_SOFT_DIRTY)',
  lazyPages: 'CRIU lazy pages (userfaultfd)',
  pipe: `fs.pipe-max-size >= ${LAZY_PAGES_MIN_PIPE_BYTES} (sysctl -w fs.pipe-max-size=${LAZY_PAGES_MIN_PIPE_BYTES})`,
  memoryRead: "reading other processes' memory (process_vm_readv and /proc/PID/pagemap: root or CAP_SYS_PTRACE)",
};

const RUNTIME_LABELS: Record<RuntimeNeed, string> = {
  preDump: 'cannot pre-dump',
  lazyPages: 'cannot dump or restore with lazy pages',
};

function meets(facts: StrategyInputs, need: HostNeed): boolean {
  switch (need) {
    case 'criu':
      return facts.criuUsable;
    case 'memTrack':
      return facts.memTrack;
    case 'lazyPages':
      return facts.lazyPages;
    case 'pipe':
      return (facts.pipeMaxSizeBytes ?? 0) >= LAZY_PAGES_MIN_PIPE_BYTES;
    case 'memoryRead':
      return facts.memoryRead;
  }
}

export interface StrategyPair {
  source: StrategyInputs;
  destination: StrategyInputs;
  /** The container's runtime, when known (the planner); doctor judges the host alone. */
  runtime?: { name: string; features?: RuntimeStrategyFeatures };
  /** How to name the ends in the reason: a migration says "source"/"destination", doctor "this host". */
  sameHost?: boolean;
}

/** Why `name` cannot run between these hosts (undefined: it can). */
export function strategyBlocker(name: StrategyName, pair: StrategyPair): string | undefined {
  const needs = NEEDS[name];
  for (const need of needs.runtime) {
    if (pair.runtime?.features?.[need] === false) return `${name} needs a runtime that can ${need === 'preDump' ? 'pre-dump' : 'dump lazily'}: ${pair.runtime.name} ${RUNTIME_LABELS[need]}`;
  }
  const missing: string[] = [];
  for (const need of new Set([...needs.source, ...needs.destination])) {
    const where = [
      needs.source.includes(need) && !meets(pair.source, need) ? 'source' : undefined,
      needs.destination.includes(need) && !meets(pair.destination, need) ? 'destination' : undefined,
    ].filter((w): w is string => w !== undefined);
    if (where.length === 0) continue;
    const both = needs.source.includes(need) && needs.destination.includes(need);
    const ends = both ? 'both hosts' : needs.source.includes(need) ? 'the source' : 'the destination';
    const on = pair.sameHost || !both ? ends : `${ends} (missing on ${where.join(' and ')})`;
    missing.push(`${NEED_LABELS[need]} on ${on}`);
  }
  return missing.length ? `${name} needs ${missing.join('; and ')}` : undefined;
}

/** `ferry doctor`'s view: which strategies this host can take part in, as either end. */
export function strategiesFor(facts: StrategyInputs): StrategyVerdict[] {
  return STRATEGY_NAMES.map((name) => {
    const why = strategyBlocker(name, { source: facts, destination: facts, sameHost: true });
    if (why) return { name, available: false, reason: why };
    if (name === 'hash-pre-copy' && !facts.memTrack) return { name, available: true, reason: 'ferry reads and hashes memory itself: pre-copy without kernel memory tracking' };
    return { name, available: true };
  });
}
