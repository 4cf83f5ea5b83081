import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forgetStaleKdatCache, kdatCacheState, keepKdatCache, type KdatCacheOptions } from './kdat-cache';

// The unit tests run as root on an ext4 /tmp (not a tmpfs); a tmpfs run dir is the integration test's.
const asRoot = process.getuid?.() === 0;
const maybe = asRoot ? test : test.skip;

let runDir: string;
let boot: string;
let made: number;
const cache = Buffer.from('kdat-bytes-of-this-boot');

function options(over: Partial<KdatCacheOptions> = {}): KdatCacheOptions {
  return {
    criuPath: process.execPath, // any executable: the fake probe below does not run it
    searchPath: '/usr/bin:/bin',
    runDir,
    bootId: () => boot,
    make: async () => {
      made++;
      return cache;
    },
    ...over,
  };
}

beforeEach(() => {
  runDir = mkdtempSync(join(tmpdir(), 'ferry-kdat-'));
  boot = 'boot-1';
  made = 0;
});
afterEach(() => rmSync(runDir, { recursive: true, force: true }));

maybe('made once per boot, kept while the stamp matches, made again after a reboot', async () => {
  expect(kdatCacheState({ runDir, bootId: () => boot })).toBe('none');
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'made' });
  expect(readFileSync(join(runDir, 'criu.kdat'))).toEqual(cache);
  expect(statSync(join(runDir, 'criu.kdat')).mode & 0o777).toBe(0o600);
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'kept' });
  expect(kdatCacheState({ runDir, bootId: () => boot })).toBe('kept');
  expect(made).toBe(1);
  boot = 'boot-2';
  expect(kdatCacheState({ runDir, bootId: () => boot })).toBe('none');
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'made' });
  expect(made).toBe(2);
});

maybe('a cache that changed or vanished under the stamp is made again', async () => {
  await keepKdatCache(options());
  writeFileSync(join(runDir, 'criu.kdat'), 'another CRIU build wrote this');
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'made' });
  rmSync(join(runDir, 'criu.kdat'));
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'made' });
  expect(made).toBe(3);
});

maybe('a link planted as the cache is replaced, not written through', async () => {
  const target = join(runDir, 'elsewhere');
  writeFileSync(target, 'not ferry');
  symlinkSync(target, join(runDir, 'criu.kdat'));
  await expect(keepKdatCache(options())).resolves.toEqual({ state: 'made' });
  expect(readFileSync(target, 'utf8')).toBe('not ferry');
  expect(readFileSync(join(runDir, 'criu.kdat'))).toEqual(cache);
});

maybe('a failed or empty probe leaves no cache and says why, without throwing', async () => {
  await expect(keepKdatCache(options({ make: async () => Promise.reject(new Error('unshare: permission denied')) }))).resolves.toEqual({
    state: 'none',
    detail: 'unshare: permission denied',
  });
  await expect(keepKdatCache(options({ make: async () => Buffer.alloc(0) }))).resolves.toMatchObject({ state: 'none' });
  expect(kdatCacheState({ runDir, bootId: () => boot })).toBe('none');
  await expect(keepKdatCache(options({ criuPath: 'no-such-criu' }))).resolves.toEqual({ state: 'none', detail: 'no-such-criu not found' });
});

maybe("another command removes ferry's cache of an earlier boot, and leaves one ferry did not make", async () => {
  await keepKdatCache(options());
  forgetStaleKdatCache({ runDir, bootId: () => boot });
  expect(readFileSync(join(runDir, 'criu.kdat'))).toEqual(cache); // this boot's: kept
  forgetStaleKdatCache({ runDir, bootId: () => 'boot-after-a-reboot' });
  expect(existsSync(join(runDir, 'criu.kdat'))).toBe(false);
  expect(existsSync(join(runDir, 'criu.kdat.ferry-stamp'))).toBe(false);
  writeFileSync(join(runDir, 'criu.kdat'), 'not stamped by ferry');
  forgetStaleKdatCache({ runDir, bootId: () => 'yet another boot' });
  expect(readFileSync(join(runDir, 'criu.kdat'), 'utf8')).toBe('not stamped by ferry');
});

test('a tmpfs run dir is left to CRIU', async () => {
  const shm = mkdtempSync('/dev/shm/ferry-kdat-');
  try {
    await expect(keepKdatCache(options({ runDir: shm }))).resolves.toEqual({ state: 'tmpfs' });
    expect(kdatCacheState({ runDir: shm })).toBe('tmpfs');
    expect(made).toBe(0);
  } finally {
    rmSync(shm, { recursive: true, force: true });
  }
});
