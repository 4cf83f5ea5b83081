/**
 * The facts both ends exchange in the hello: quick to gather (three CRIU RPC calls in parallel), unlike the full
 * `ferry doctor` probe.
 */
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { arch, hostname, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SEARCH_PATH, FERRY_STATE_DIR, MIN_CRIU_VERSION, canReadMemory, hostId, keepKdatCache, kernelPageSizeBytes, readPipeMaxSize, type CriuClient, type RuntimeAdapter } from '@ferry/core';
import type { HostSummary } from '../protocol/agent-messages';

export const FERRY_VERSION: string = (require('../../package.json') as { version: string }).version;

export async function hostSummary(criu: CriuClient, runtimes: readonly RuntimeAdapter[], stateDir = FERRY_STATE_DIR, searchPath = DEFAULT_SEARCH_PATH): Promise<HostSummary> {
  // Both ends greet before anything freezes: the place to make sure CRIU starts without probing the kernel (the
  // freeze holds two CRIU starts), and the three calls below gain from it too.
  await keepKdatCache({ criuPath: criu.criuPath, searchPath });
  const workDir = mkdtempSync(join(tmpdir(), 'ferry-hello-'));
  try {
    const [version, features, check, runtimeFacts, memoryRead] = await Promise.all([
      criu.version().catch(() => undefined),
      criu.features().catch(() => ({ memTrack: false, lazyPages: false })),
      criu.check(workDir).then((r) => r.ok, () => false),
      Promise.all(runtimes.map(async (r) => ({ name: r.name, ...(await r.availability()) }))),
      canReadMemory(),
    ]);
    const versionOk = version !== undefined && version.major * 1000 + version.minor >= MIN_CRIU_VERSION.major * 1000 + MIN_CRIU_VERSION.minor;
    const fs = statfsSync(tmpdir());
    return {
      hostId: hostId(stateDir),
      hostname: hostname(),
      kernel: release(),
      arch: arch(),
      pageSizeBytes: kernelPageSizeBytes(),
      ferryVersion: FERRY_VERSION,
      criu: { version: version?.text, versionOk, checkOk: check, memTrack: features.memTrack, lazyPages: features.lazyPages },
      runtimes: runtimeFacts.map((r) => ({ name: r.name, usable: r.usable, reason: r.reason })),
      freeDiskBytes: fs.bavail * fs.bsize,
      pipeMaxSizeBytes: readPipeMaxSize(),
      memoryRead,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
