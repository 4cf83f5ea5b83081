/**
 * A manifest of an images directory, computed before a transfer and verified after it: every regular file with
 * its size and SHA-256, every symlink with its target (CRIU's `parent` link is recorded, never followed).
 * Deterministic (entries sorted by path) and plain JSON, so both hosts can compute and compare it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';
import { walkImageDir, type WalkEntry } from './dir-walk';

export const MANIFEST_VERSION = 1;

export type ManifestEntry =
  | { path: string; type: 'file'; size: number; sha256: string }
  | { path: string; type: 'symlink'; target: string };

export interface ImageManifest {
  version: typeof MANIFEST_VERSION;
  algorithm: 'sha256';
  entries: ManifestEntry[];
  fileCount: number;
  totalBytes: number;
}

export interface ManifestOptions {
  /** Paths (relative, '/'-separated) to leave out, e.g. CRIU logs that keep growing after the dump. */
  exclude?: (path: string) => boolean;
  /** Files hashed at once; pages files dominate, so more than a few only adds seeks. */
  concurrency?: number;
  signal?: AbortSignal;
}

export type MismatchKind = 'missing' | 'extra' | 'type' | 'size' | 'hash' | 'target';

export interface ManifestMismatch {
  path: string;
  kind: MismatchKind;
  expected?: string | number;
  actual?: string | number;
}

const READ_CHUNK_BYTES = 1 << 20;
const DEFAULT_CONCURRENCY = 4;

/** Every file (size, sha256) and symlink of an image directory, in a stable order; the directory is only read. */
export async function computeManifest(dir: string, options: ManifestOptions = {}): Promise<ImageManifest> {
  const walked = (await walkImageDir(dir)).filter((e) => !options.exclude?.(e.path));
  const entries = await mapLimit(walked, options.concurrency ?? DEFAULT_CONCURRENCY, async (e): Promise<ManifestEntry> => {
    if (e.type === 'symlink') return { path: e.path, type: 'symlink', target: e.target };
    return { path: e.path, type: 'file', size: e.size, sha256: await sha256File(join(dir, e.path), options.signal) };
  });
  const files = entries.flatMap((e) => (e.type === 'file' ? [e] : []));
  return {
    version: MANIFEST_VERSION,
    algorithm: 'sha256',
    entries,
    fileCount: files.length,
    totalBytes: files.reduce((sum, e) => sum + e.size, 0),
  };
}

/**
 * Compares `dir` with a manifest; an empty list means it matches. Files whose size already differs are not hashed.
 * `exclude` applies to both sides, so a log excluded when computing is not reported as extra.
 */
export async function verifyManifest(dir: string, manifest: ImageManifest, options: ManifestOptions = {}): Promise<ManifestMismatch[]> {
  checkManifest(manifest);
  const keep = (path: string) => !options.exclude?.(path);
  const actual = new Map<string, WalkEntry>((await walkImageDir(dir)).filter((e) => keep(e.path)).map((e) => [e.path, e]));
  const mismatches: ManifestMismatch[] = [];
  const toHash: { path: string; expected: string }[] = [];
  for (const want of manifest.entries.filter((e) => keep(e.path))) {
    const have = actual.get(want.path);
    actual.delete(want.path);
    if (!have) mismatches.push({ path: want.path, kind: 'missing' });
    else if (have.type !== want.type) mismatches.push({ path: want.path, kind: 'type', expected: want.type, actual: have.type });
    else if (want.type === 'symlink' && have.type === 'symlink') {
      if (have.target !== want.target) mismatches.push({ path: want.path, kind: 'target', expected: want.target, actual: have.target });
    } else if (want.type === 'file' && have.type === 'file') {
      if (have.size !== want.size) mismatches.push({ path: want.path, kind: 'size', expected: want.size, actual: have.size });
      else toHash.push({ path: want.path, expected: want.sha256 });
    }
  }
  for (const extra of actual.keys()) mismatches.push({ path: extra, kind: 'extra' });
  const hashed = await mapLimit(toHash, options.concurrency ?? DEFAULT_CONCURRENCY, async (f) => ({
    ...f,
    actual: await sha256File(join(dir, f.path), options.signal),
  }));
  for (const f of hashed) if (f.actual !== f.expected) mismatches.push({ path: f.path, kind: 'hash', expected: f.expected, actual: f.actual });
  return mismatches.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

/** Streams the file through SHA-256 in 1 MiB reads: pages files can be GiBs. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) {
    if (signal?.aborted) throw new FerryError('ERR_ABORTED', `hashing ${path} was cancelled`, { cause: signal.reason });
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

function checkManifest(manifest: ImageManifest): void {
  if (manifest?.version !== MANIFEST_VERSION || manifest.algorithm !== 'sha256' || !Array.isArray(manifest.entries)) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `unsupported image manifest (version ${String(manifest?.version)}, algorithm ${String(manifest?.algorithm)})`, {
      hint: 'Use the same ferry version on both hosts, or recompute the manifest on the source.',
    });
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
