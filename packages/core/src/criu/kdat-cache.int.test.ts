/**
 * The kernel-probe cache with the real CRIU and unshare (root, provisioned host): the cache ferry makes is the one
 * CRIU loads, and a CRIU start with it skips the probe.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kdatCacheState, keepKdatCache } from './kdat-cache';

jest.setTimeout(60_000);

const searchPath = process.env.PATH ?? '/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin';

function criuCheckLog(): string {
  const r = spawnSync('criu', ['check', '-v4'], { encoding: 'utf8', timeout: 30_000 });
  return `${r.stdout}${r.stderr}`;
}

test('the cache made in a private /run is a real CRIU cache: CRIU loads it instead of probing', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'ferry-kdat-int-'));
  try {
    // Made for a scratch directory first: the bytes come from CRIU's own save, through the private tmpfs.
    await expect(keepKdatCache({ criuPath: 'criu', searchPath, runDir })).resolves.toEqual({ state: 'made' });
    expect(readFileSync(join(runDir, 'criu.kdat')).length).toBeGreaterThan(100);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  // Then for this host, as a move does.
  const result = await keepKdatCache({ criuPath: 'criu', searchPath });
  const tmpfsRun = statfsSync('/run').type === 0x01021994;
  if (tmpfsRun) {
    expect(result.state).toBe('tmpfs');
    criuCheckLog(); // CRIU saves its own on its first start
  } else {
    expect(['made', 'kept']).toContain(result.state);
    expect(kdatCacheState()).toBe('kept');
  }
  expect(criuCheckLog()).toMatch(/Loaded kdat cache from \/run\/criu\.kdat/);
  // The private mount namespace took its tmpfs with it: nothing of it is left on this host's /run.
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/ ferry-kdat /);
});
