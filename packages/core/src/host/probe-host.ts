/**
 * What this host can do, as `ferry doctor` and the migration preflight need it. Every probe is independent and
 * turns its own failure into a fact ("not available, because ..."), so one broken piece never hides the others.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findPresentRanges, listMemoryRegions, readMemory } from '@ferry/native';
import type { CriuClient, CriuFeatures, CriuVersion } from '../criu/criu-client';
import { kdatCacheState } from '../criu/kdat-cache';
import { FerryError } from '../model/ferry-error';
import { parseCgroupLayout, type CgroupInfo } from './cgroup-layout';
import { findExecutable } from './find-executable';
import { strategiesFor, type StrategyVerdict } from './strategies';

const run = promisify(execFile);

/** ferry needs CRIU >= 4.2: 4.1 cannot dump AF_INET sockets on kernels >= 6.16 (SO_PASSCRED). */
export const MIN_CRIU_VERSION = { major: 4, minor: 2 } as const;

/** `criu check --feature` names worth showing; RPC FEATURE_CHECK covers only mem_track, lazy_pages and pidfd_store. */
export const PROBED_CRIU_FEATURES = [
  'mem_dirty_track',
  'uffd',
  'uffd-noncoop',
  'tcp_half_closed',
  'pagemap_scan',
  'timens',
  'clone3_set_tid',
  'network_lock_nftables',
  'cgroupns',
] as const;

export interface RuntimeFact {
  name: 'runc' | 'lxc' | 'docker' | 'podman';
  present: boolean;
  usable: boolean;
  path?: string;
  version?: string;
  reason?: string;
}

export interface HostFacts {
  hostname: string;
  kernel: string;
  pageSizeBytes: number;
  isRoot: boolean;
  criu: {
    path?: string;
    version?: CriuVersion;
    versionOk: boolean;
    check: { ok: boolean; detail?: string };
    features: Partial<CriuFeatures>;
    kernelFeatures: Record<string, boolean>;
    error?: string;
  };
  cgroups: CgroupInfo;
  pipeMaxSizeBytes?: number;
  /**
   * The kernel's transparent huge page mode (always, madvise, never). A restore writes every page of the container's
   * memory into fresh memory; outside "always" that is one fault per 4 KiB page (docs/benchmarks.md).
   */
  transparentHugePages?: string;
  /**
   * CRIU's kernel-probe cache (/run/criu.kdat): kept by CRIU on a tmpfs /run, else by ferry for the current boot
   * (criu/kdat-cache.ts). Without it every CRIU start probes the kernel again (~70 ms here, running iptables among
   * others), twice in each move's frozen window.
   */
  criuKdatCache: 'tmpfs' | 'kept' | 'none';
  runtimes: RuntimeFact[];
  strategies: StrategyVerdict[];
  /** True when this host can at least checkpoint and restore. */
  canCheckpoint: boolean;
}

export interface ProbeOptions {
  criu: CriuClient;
  /** PATH used to find executables (the CLI passes the environment's). */
  searchPath: string;
  signal?: AbortSignal;
}

/**
 * Everything `ferry doctor` reports about this host: CRIU, runtimes, cgroups, kernel features, usable strategies.
 * Never throws for a missing part.
 */
export async function probeHost(options: ProbeOptions): Promise<HostFacts> {
  const [criu, runtimes] = await Promise.all([probeCriu(options), probeRuntimes(options.searchPath)]);
  const cgroups = parseCgroupLayout(readText('/proc/self/mountinfo') ?? '');
  const pipeMaxSizeBytes = readPipeMaxSize();
  const criuUsable = criu.versionOk && criu.check.ok;
  const strategies = strategiesFor({
    criuUsable,
    memTrack: criu.features.memTrack === true,
    lazyPages: criu.features.lazyPages === true,
    pipeMaxSizeBytes,
    memoryRead: await canReadMemory(),
  });
  return {
    hostname: readText('/proc/sys/kernel/hostname')?.trim() ?? 'unknown',
    kernel: release(),
    pageSizeBytes: kernelPageSizeBytes(),
    isRoot: process.getuid?.() === 0,
    criu,
    cgroups,
    pipeMaxSizeBytes,
    transparentHugePages: thpMode(readText(THP_ENABLED)),
    criuKdatCache: kdatCacheState(),
    runtimes,
    strategies,
    canCheckpoint: criuUsable,
  };
}

async function probeCriu(options: ProbeOptions): Promise<HostFacts['criu']> {
  const path = findExecutable(options.criu.criuPath, options.searchPath);
  const facts: HostFacts['criu'] = { path, versionOk: false, check: { ok: false }, features: {}, kernelFeatures: {} };
  if (!path) {
    facts.error = `${options.criu.criuPath} not found in PATH`;
    facts.check.detail = 'criu is not installed';
    return facts;
  }
  try {
    facts.version = await options.criu.version(options.signal);
    const { major, minor } = facts.version;
    facts.versionOk = major > MIN_CRIU_VERSION.major || (major === MIN_CRIU_VERSION.major && minor >= MIN_CRIU_VERSION.minor);
  } catch (err) {
    facts.error = describe(err);
    return facts;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'ferry-check-'));
  try {
    const [check, features, kernelFeatures] = await Promise.all([
      options.criu.check(workDir, options.signal).then(
        (r) => ({ ok: r.ok, detail: r.ok ? undefined : lastErrorLine(r.logPath) }),
        (err: unknown) => ({ ok: false, detail: describe(err) }),
      ),
      options.criu.features(options.signal).catch(() => ({})),
      probeKernelFeatures(path),
    ]);
    facts.check = check;
    facts.features = features;
    facts.kernelFeatures = kernelFeatures;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  return facts;
}

/** `criu check --feature NAME` exits 0 when present; the RPC has no equivalent for most of these. */
async function probeKernelFeatures(criuPath: string): Promise<Record<string, boolean>> {
  const results = await Promise.all(
    PROBED_CRIU_FEATURES.map(async (feature) => {
      try {
        await run(criuPath, ['check', '--feature', feature], { timeout: 20_000 });
        return [feature, true] as const;
      } catch {
        return [feature, false] as const;
      }
    }),
  );
  return Object.fromEntries(results);
}

async function probeRuntimes(searchPath: string): Promise<RuntimeFact[]> {
  const probes: [RuntimeFact['name'], string, string[]][] = [
    ['runc', 'runc', ['--version']],
    ['lxc', 'lxc-checkpoint', ['--version']],
    ['docker', 'docker', ['version', '--format', '{{.Server.Version}}']],
    ['podman', 'podman', ['version', '--format', '{{.Client.Version}}']],
  ];
  return Promise.all(
    probes.map(async ([name, binary, args]): Promise<RuntimeFact> => {
      const path = findExecutable(binary, searchPath);
      if (!path) return { name, present: false, usable: false, reason: `${binary} not found in PATH` };
      try {
        const { stdout } = await run(path, args, { timeout: 10_000 });
        return { name, present: true, usable: true, path, version: firstLine(stdout) };
      } catch (err) {
        return { name, present: true, usable: false, path, reason: firstLine(describe(err)) };
      }
    }),
  );
}

function lastErrorLine(logPath: string): string | undefined {
  const text = readText(logPath);
  if (!text) return undefined;
  const errors = text.split('\n').filter((l) => /Error/.test(l) && !/RLIMIT_NOFILE/.test(l));
  return errors.at(-1)?.trim();
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The kernel's page size in bytes (4096 when /proc does not say). */
export function kernelPageSizeBytes(): number {
  // Node has no sysconf; the kernel's page size shows in /proc/self/smaps as KernelPageSize.
  const smaps = readText('/proc/self/smaps') ?? '';
  const match = /KernelPageSize:\s+(\d+) kB/.exec(smaps);
  return match ? Number(match[1]) * 1024 : 4096;
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

function describe(err: unknown): string {
  if (err instanceof FerryError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Reads a page of this process's own stack the way hash-based pre-copy reads a container's memory. */
/** fs.pipe-max-size, undefined when unreadable. */
export function readPipeMaxSize(): number | undefined {
  const text = readText('/proc/sys/fs/pipe-max-size');
  return text ? Number.parseInt(text, 10) : undefined;
}

/** Whether this process can read another's memory the way hash-pre-copy does (tried on its own stack). */
export async function canReadMemory(): Promise<boolean> {
  try {
    const regions = await listMemoryRegions(process.pid);
    const stack = regions.find((r) => r.pathname === '[stack]');
    if (!stack) return false;
    const present = await findPresentRanges(process.pid, { address: stack.start, length: stack.length });
    if (present.length === 0) return false;
    const r = await readMemory(process.pid, [{ address: present[0]!.address, length: 4096 }]);
    return r.bytesRead === 4096;
  } catch {
    return false;
  }
}

const THP_ENABLED = '/sys/kernel/mm/transparent_hugepage/enabled';

/** The bracketed mode of /sys/kernel/mm/transparent_hugepage/enabled ("always [madvise] never" -> madvise). */
export function thpMode(text: string | undefined): string | undefined {
  return text === undefined ? undefined : /\[(\w+)\]/.exec(text)?.[1];
}
