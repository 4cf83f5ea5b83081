/**
 * CRIU's kernel-probe cache on a host whose /run is not a tmpfs.
 *
 * Every CRIU start probes the kernel (kerndat: about 70 ms here, iptables runs among it) unless it finds the result
 * of an earlier probe in /run/criu.kdat. CRIU writes that file only when /run is a tmpfs, so that a reboot (a new
 * kernel) cannot leave a stale one; it reads one wherever it is. A move's frozen window holds two CRIU starts (the
 * dump, the restore), so on a host without the cache each move pays the probe twice while clients wait.
 *
 * Where /run is not a tmpfs (this lab's VM; containers used as hosts), ferry keeps the cache itself and does what the
 * tmpfs did: the file is made by CRIU (a `criu check` in a private mount namespace whose /run is a fresh tmpfs), and
 * ferry's stamp beside it names the boot it was made in and the file's digest. Both ends of a move make it when they
 * greet (keepKdatCache; after a reboot, or when the file changed or vanished, again); every other ferry command that
 * drives CRIU first removes one of an earlier boot (forgetStaleKdatCache). CRIU itself drops a cache of another CRIU
 * build (its magic numbers and size differ). What this cannot cover: a CRIU run by something else after a reboot and
 * before the next ferry command reads the previous boot's probe (`ferry doctor` says so).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, renameSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable } from '../host/find-executable';

export const KDAT_FILE = 'criu.kdat';
const STAMP_FILE = 'criu.kdat.ferry-stamp';
const TMPFS_MAGIC = 0x01021994;
const BOOT_ID = '/proc/sys/kernel/random/boot_id';
const MAKE_TIMEOUT_MS = 20_000;
/** The kdat structure is a few KiB at most: anything larger is not CRIU's cache. */
const MAX_KDAT_BYTES = 1 << 20;

/**
 * `tmpfs`: CRIU keeps the cache itself. `kept`: ferry's cache of this boot is in place. `made`: ferry made it now.
 * `none`: there is no cache (not root, no unshare, CRIU could not make one: `detail` says why).
 */
export type KdatCacheState = 'tmpfs' | 'kept' | 'made' | 'none';

export interface KdatCacheOptions {
  criuPath: string;
  searchPath: string;
  /** /run; tests point it elsewhere. */
  runDir?: string;
  bootId?: () => string;
  /** Runs CRIU's probe where it may save its cache; resolves with the cache's bytes. Tests replace it. */
  make?: (criu: string, unshare: string) => Promise<Buffer>;
}

interface Stamp {
  bootId: string;
  sha256: string;
}

const readBootId = () => readFileSync(BOOT_ID, 'utf8').trim();
const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function onTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** Regular file contents, never through a link; undefined when absent, a link or too large. */
function readRegular(path: string): Buffer | undefined {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size > MAX_KDAT_BYTES) return undefined;
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

function readStamp(path: string): Stamp | undefined {
  const bytes = readRegular(path);
  if (!bytes) return undefined;
  try {
    const s = JSON.parse(bytes.toString('utf8')) as Partial<Stamp>;
    return typeof s.bootId === 'string' && typeof s.sha256 === 'string' ? { bootId: s.bootId, sha256: s.sha256 } : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `bytes` as `path` atomically: a new private file beside it (O_EXCL), renamed over the name (a link is replaced, not followed). */
function replace(path: string, bytes: Buffer): void {
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(draft, 'wx', 0o600);
  try {
    try {
      writeSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    renameSync(draft, path);
  } catch (err) {
    rmSync(draft, { force: true }); // a full disk must not leave drafts in /run
    throw err;
  }
}

/** What the cache is now, without changing anything (`ferry doctor`). */
export function kdatCacheState(options: Pick<KdatCacheOptions, 'runDir' | 'bootId'> = {}): Exclude<KdatCacheState, 'made'> {
  const runDir = options.runDir ?? '/run';
  if (onTmpfs(runDir)) return 'tmpfs';
  return currentStamp(runDir, options.bootId ?? readBootId) ? 'kept' : 'none';
}

function currentStamp(runDir: string, bootId: () => string): boolean {
  const stamp = readStamp(join(runDir, STAMP_FILE));
  const kdat = readRegular(join(runDir, KDAT_FILE));
  try {
    return stamp !== undefined && kdat !== undefined && stamp.bootId === bootId() && stamp.sha256 === digest(kdat);
  } catch {
    return false;
  }
}

/**
 * Removes ferry's cache when it was made in an earlier boot (see the top of this file); a cache ferry did not stamp
 * is not ferry's to remove. Synchronous and cheap (a statfs, two small reads): for every command that drives CRIU.
 */
export function forgetStaleKdatCache(options: Pick<KdatCacheOptions, 'runDir' | 'bootId'> = {}): void {
  const runDir = options.runDir ?? '/run';
  if (onTmpfs(runDir)) return;
  const stamp = readStamp(join(runDir, STAMP_FILE));
  try {
    if (!stamp || stamp.bootId === (options.bootId ?? readBootId)()) return;
    rmSync(join(runDir, KDAT_FILE), { force: true });
    rmSync(join(runDir, STAMP_FILE), { force: true });
  } catch {
    /* not root, or /run is read-only: CRIU then probes as it would without ferry */
  }
}

/**
 * Makes sure CRIU finds this boot's kernel probe (see the top of this file). Never throws: without the cache CRIU
 * only starts slower. Costs a statfs, two small reads and a digest when the cache is in place, one `criu check`
 * (~0.15 s) once per boot otherwise.
 */
export async function keepKdatCache(options: KdatCacheOptions): Promise<{ state: KdatCacheState; detail?: string }> {
  const runDir = options.runDir ?? '/run';
  const bootId = options.bootId ?? readBootId;
  if (onTmpfs(runDir)) return { state: 'tmpfs' };
  if (process.getuid?.() !== 0) return { state: 'none', detail: 'not root' };
  if (currentStamp(runDir, bootId)) return { state: 'kept' };
  const criu = findExecutable(options.criuPath, options.searchPath);
  const unshare = findExecutable('unshare', options.searchPath);
  if (!criu || !unshare) return { state: 'none', detail: `${criu ? 'unshare' : options.criuPath} not found` };
  try {
    const st = lstatSync(runDir);
    if (!st.isDirectory()) return { state: 'none', detail: `${runDir} is not a directory` };
    const bytes = await (options.make ?? probeInPrivateRun)(criu, unshare);
    if (bytes.length === 0 || bytes.length > MAX_KDAT_BYTES) return { state: 'none', detail: `CRIU left no usable cache (${bytes.length} bytes)` };
    // The stamp goes first and names the new digest: a crash between the two leaves a stamp that does not match.
    replace(join(runDir, STAMP_FILE), Buffer.from(JSON.stringify({ bootId: bootId(), sha256: digest(bytes) } satisfies Stamp)));
    replace(join(runDir, KDAT_FILE), bytes);
    return { state: 'made' };
  } catch (err) {
    return { state: 'none', detail: (err as Error).message };
  }
}

/**
 * `criu check` in a new mount namespace whose /run is an empty tmpfs: CRIU probes the kernel and saves its cache
 * there, and the cache comes back on stdout. The shell script is constant; CRIU's path is its argument.
 */
const PROBE_SCRIPT = 'mount -t tmpfs -o size=1m,mode=0700 ferry-kdat /run || exit 1; "$1" check >/dev/null 2>&1; exec cat /run/criu.kdat';

function probeInPrivateRun(criu: string, unshare: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      unshare,
      ['--mount', '--propagation', 'private', '--', 'sh', '-c', PROBE_SCRIPT, 'ferry-kdat-probe', criu],
      { encoding: 'buffer', timeout: MAKE_TIMEOUT_MS, maxBuffer: MAX_KDAT_BYTES },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`the kernel probe in a private /run failed: ${stderr.toString('utf8').trim().split('\n').pop() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}
