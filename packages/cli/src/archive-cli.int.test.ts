/**
 * Checkpoint archives through the built CLI (`npx tsc -b` first): `ferry checkpoint --export`, `ferry restore
 * --import`, `ferry start --from FILE`, `ferry snapshot export`, and their refusals, against real runc and CRIU.
 * (Podman reading ferry's archives and the reverse: core/src/archive/archive.int.test.ts.)
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWorkloadState, verifyWorkloadMemory, waitForCounter } from '@ferry/core/testing';
import { ferry, ferryOk, jsonOutput } from './testing/run-ferry';
import { runcCliFixture } from './testing/runc-cli-fixture.test-helpers';

jest.setTimeout(90_000);

const cli = runcCliFixture('ferry-archive-cli-');
const { adapter, cleanups, container } = cli;

it('checkpoint --export writes an archive and no image directory; restore --import brings the container back', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 2);
  const file = join(cli.dir, 'ct.tar');
  const out = jsonOutput(await ferryOk('checkpoint', c.name, '--export', file, '--json'));
  expect(out.archive).toMatchObject({ file, rootfsImage: 'localhost/ferry-empty:latest' });
  expect(out.imagesDir).toBeUndefined(); // the temporary image directory is gone
  const stopped = readWorkloadState(c.stateFile)!.counter;

  const importDir = join(cli.dir, 'import');
  const restored = jsonOutput(await ferryOk('restore', '--import', file, '--import-dir', importDir, '--json'));
  cleanups.push(() => adapter.remove(c.name));
  expect(restored.container.ref).toEqual({ runtime: 'runc', id: c.name });
  expect(restored.archive).toMatchObject({ rootfsSource: 'complete', dir: importDir });
  await waitForCounter(c.stateFile, stopped + 2);
  expect(await verifyWorkloadMemory(restored.container.pid, c.stateFile)).toBe('ok');
});

it('start --from FILE starts numbered copies from an archive', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 2);
  const file = join(cli.dir, 'ct.tar');
  await ferryOk('checkpoint', c.name, '--export', file, '--leave-running');
  const prefix = `${c.name}-cp`;
  const run = await ferryOk('start', '--from', file, '--count', '2', '--name-prefix', prefix, '--import-dir', join(cli.dir, 'import'), '--json');
  for (const n of [1, 2]) cleanups.push(() => adapter.remove(`${prefix}-${n}`));
  const started = jsonOutput(run).containers as { container: { ref: { id: string }; state: string } }[];
  expect(started.map((s) => s.container.ref.id)).toEqual([`${prefix}-1`, `${prefix}-2`]);
  expect(started.every((s) => s.container.state === 'running')).toBe(true);
});

it('refuses what it cannot read, leaving no import directory', async () => {
  const junk = join(cli.dir, 'junk.tar');
  writeFileSync(junk, 'not a tar at all\n'.repeat(100));
  const importRoot = join(cli.dir, 'imports');
  const run = await ferry('restore', '--import', junk, '--import-dir', join(importRoot, 'x'));
  expect(run.status).toBe(4); // ERR_IMAGE_*
  expect(run.stderr).toMatch(/ERR_IMAGE_CORRUPT/);
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(existsSync(join(importRoot, 'x'))).toBe(false);

  // An export that cannot be written is refused before the checkpoint: the container keeps running.
  const c = await container();
  const bad = await ferry('checkpoint', c.name, '--export', join(cli.dir, 'no-such-dir', 'ct.tar'));
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/ERR_PRECHECK_BAD_INPUT/);
  expect((await adapter.inspect(c.name)).state).toBe('running');

  const missing = await ferry('restore');
  expect(missing.status).toBe(2);
  expect(missing.stderr).toMatch(/--import FILE/);
});

it('snapshot export writes a snapshot as an archive', async () => {
  const c = await container();
  await waitForCounter(c.stateFile, 2);
  const store = join(cli.dir, 'store');
  await ferryOk('snapshot', '--store', store, c.name);
  const file = join(cli.dir, 'snap.tar');
  const out = jsonOutput(await ferryOk('snapshot', '--store', store, 'export', c.name, 'latest', file, '--json'));
  expect(out.archive.file).toBe(file);
  expect(readdirSync(cli.dir)).toContain('snap.tar');
});
