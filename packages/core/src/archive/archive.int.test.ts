/**
 * The checkpoint archive against real Podman 4.3 (private storage root, testing/podman.ts), runc and CRIU:
 * a runc container exported by ferry is restored by `podman container restore --import`, and a Podman container
 * exported by `podman container checkpoint --export` is restored by ferry as a runc container. Each side checks that
 * the workload carries on from where it was (its counter) with its memory intact.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCleanups, type Cleanup } from '../testing/cleanups';
import { createPodmanSandbox, PODMAN_RUN_FLAGS, podmanPath, type PodmanSandbox } from '../testing/podman';
import { buildTestRootfs, startRuncContainer } from '../testing/runc-container';
import { readWorkloadState, verifyWorkloadMemory, waitForCounter, workloadArgs } from '../testing/workload';
import { RuncAdapter } from '../runtime/runc-adapter';
import { archiveTools } from './archive-file';
import { writeCheckpointArchive } from './export-archive';
import { prepareArchiveImport } from './import-archive';
import { DEFAULT_SEARCH_PATH } from '../runtime/adapter-options';
import { isFerryError } from '../model/ferry-error';

jest.setTimeout(120_000);

const havePodman = podmanPath() !== undefined;
const maybe = havePodman ? it : it.skip;
if (!havePodman) console.warn('skipped: podman is not installed (scripts/provision-host.sh installs it)');

let dir: string;
let adapter: RuncAdapter;
let pm: PodmanSandbox;
const cleanups: Cleanup[] = [];
const tools = archiveTools(DEFAULT_SEARCH_PATH);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-archive-int-'));
  adapter = new RuncAdapter({ stateDir: join(dir, 'adapter-state') });
  if (havePodman) {
    pm = await createPodmanSandbox();
    cleanups.push(() => pm.cleanup());
  }
});

afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

maybe('a runc container exported by ferry is restored by podman container restore --import', async () => {
  const c = await startRuncContainer({ memMib: 32 });
  cleanups.push(() => c.stop());
  const before = await waitForCounter(c.stateFile, 3);
  const imagesDir = join(dir, 'images');
  await adapter.checkpoint({ runtime: 'runc', id: c.name }, { imagesDir, fileLocks: true });
  const file = join(dir, 'ct.tar');
  const exported = await writeCheckpointArchive({ imagesDir, file, tools });
  expect(exported.rootfsImage).toBe('localhost/ferry-empty:latest');
  const stopped = readWorkloadState(c.stateFile)!.counter;

  await pm.importEmptyImage();
  await pm.run(['container', 'restore', '--import', file]);
  const ps = await pm.run(['ps', '--format', '{{.Names}} {{.Status}}']);
  expect(ps).toMatch(new RegExp(`^${c.name} Up`, 'm'));
  // The workload's state directory is the same host directory (a bind mount Podman keeps): it counts on.
  const after = await waitForCounter(c.stateFile, stopped + 2);
  expect(after.counter).toBeGreaterThan(before.counter);
  expect(await verifyWorkloadMemory(await pm.pidOf(c.name), c.stateFile)).toBe('ok');
  // Podman owns it now: `podman stop` stops it.
  await pm.run(['stop', '--time', '1', c.name]);
  expect(await pm.run(['ps', '-q'])).toBe('');
});

maybe('a Podman-exported archive is restored by ferry as a runc container (rootfs from the image Podman names)', async () => {
  const stateDir = join(dir, 'state');
  const rootfs = buildTestRootfs();
  await pm.importDir(rootfs, 'localhost/ferry-test:1');
  const name = `ferry-pm-${Math.random().toString(36).slice(2, 8)}`;
  const args = ['/usr/bin/workload', ...workloadArgs({ stateFile: '/state/state', memMib: 32 })];
  mkdirSync(stateDir);
  await pm.run(['run', '-d', '--name', name, ...PODMAN_RUN_FLAGS, '-v', `${stateDir}:/state`, 'localhost/ferry-test:1', ...args]);
  const stateFile = join(stateDir, 'state');
  await waitForCounter(stateFile, 3, 20_000);
  // A file the container wrote goes with rootfs-diff.tar.
  await pm.run(['exec', name, 'sh', '-c', 'echo carried > /tmp/marker']);
  const file = join(dir, 'podman.tar.zst');
  await pm.run(['container', 'checkpoint', '--export', file, name]);
  const stopped = readWorkloadState(stateFile)!.counter;

  // ferry's import asks this host's Podman for the image's files (podman image mount), with the sandbox's storage.
  const prepared = await prepareArchiveImport({ file, dir: join(dir, 'import'), name: `${name}-r`, tools: { ...tools, podmanEnv: pm.env } });
  expect(prepared.compression).toBe('zstd');
  expect(prepared.rootfsSource).toBe('podman');
  expect(readFileSync(join(prepared.bundle, 'rootfs', 'tmp', 'marker'), 'utf8')).toBe('carried\n');
  const restored = await adapter.restore({ imagesDir: prepared.imagesDir, name: prepared.name, bundle: prepared.bundle });
  cleanups.push(() => adapter.remove(prepared.name));
  expect(restored.container.state).toBe('running');
  await waitForCounter(stateFile, stopped + 2);
  expect(await verifyWorkloadMemory(restored.container.pid!, stateFile)).toBe('ok');
});

maybe('an archive that is not one is refused with a code, and the import directory is left to the caller', async () => {
  const file = join(dir, 'not-an-archive');
  writeFileSync(file, 'hello\n'.repeat(200));
  const err = await prepareArchiveImport({ file, dir: join(dir, 'import'), tools }).catch((e: unknown) => e);
  expect(isFerryError(err) && err.code).toBe('ERR_IMAGE_CORRUPT');
  expect(existsSync(join(dir, 'import', 'bundle'))).toBe(false);
});
