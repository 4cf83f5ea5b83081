import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RestoreOptions } from '../runtime/runtime-adapter';
import { FerryError } from '../model/ferry-error';
import { FakeRuntime } from '../testing/fake-runtime';
import { chooseNetns, configForOwnNetns, copyNames, planStartFromImage, startCopiesFromImage, startFromImage } from './start-from-image';

let dir: string;
let netns: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-start-'));
  netns = join(dir, 'netns-web'); // any existing file stands in for a namespace
  writeFileSync(netns, '');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The listing of a directory with sizes and mtimes, to show it was not written. */
function fingerprint(path: string): string {
  return readdirSync(path)
    .sort()
    .map((f) => `${f} ${statSync(join(path, f)).size} ${statSync(join(path, f)).mtimeMs}`)
    .join('\n');
}

async function imageOfWeb(runtime: FakeRuntime): Promise<string> {
  runtime.add('web', netns);
  const images = join(dir, 'images');
  await runtime.checkpoint({ runtime: 'runc', id: 'web' }, { imagesDir: images, leaveRunning: false });
  return images;
}

test('netns choice: none without a path, re-create when missing, own when taken, else join', () => {
  expect(chooseNetns({ recordedPath: undefined, pathExists: false, holders: [] }).mode).toBe('none');
  expect(chooseNetns({ recordedPath: '/run/netns/a', pathExists: false, holders: [] })).toEqual({
    mode: 'recreate',
    recordedPath: '/run/netns/a',
    holders: [],
    reason: '/run/netns/a does not exist on this host',
  });
  expect(chooseNetns({ recordedPath: '/run/netns/a', pathExists: true, holders: ['z', 'b'] })).toEqual({
    mode: 'own',
    recordedPath: '/run/netns/a',
    holders: ['b', 'z'],
    reason: '/run/netns/a is in use by b, z',
  });
  expect(chooseNetns({ recordedPath: '/run/netns/a', pathExists: true, holders: [] }).mode).toBe('join');
});

test('config of a copy with its own netns: path replaced, rootfs and relative bind sources made absolute', () => {
  const config = {
    root: { path: 'rootfs' },
    mounts: [
      { destination: '/data', type: 'bind', source: 'data', options: ['rbind'] },
      { destination: '/abs', type: 'bind', source: '/srv/abs' },
      { destination: '/proc', type: 'proc', source: 'proc' },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/ferry-ct-web' }] },
  };
  const copy = configForOwnNetns(config, { originalBundle: '/b/web', missingNetnsPath: '/w/none' });
  expect(copy.root?.path).toBe('/b/web/rootfs');
  expect(copy.mounts?.map((m) => m.source)).toEqual(['/b/web/data', '/srv/abs', 'proc']);
  expect(copy.linux?.namespaces?.find((n) => n.type === 'network')?.path).toBe('/w/none');
  expect(config.linux.namespaces[1]!.path).toBe('/run/netns/ferry-ct-web'); // the input is not changed
});

test('names: --name, the recorded name, PREFIX-1..N; nonsense refused as bad input', () => {
  expect(copyNames({ count: 1, recordedName: 'web' })).toEqual(['web']);
  expect(copyNames({ count: 1, name: 'w2', recordedName: 'web' })).toEqual(['w2']);
  expect(copyNames({ count: 3, recordedName: 'web' })).toEqual(['web-1', 'web-2', 'web-3']);
  expect(copyNames({ count: 2, namePrefix: 'api', recordedName: 'web' })).toEqual(['api-1', 'api-2']);
  expect(copyNames({ count: 1, namePrefix: 'api' })).toEqual(['api-1']);
  const bad = (input: Parameters<typeof copyNames>[0]) => {
    try {
      copyNames(input);
    } catch (err) {
      return (err as FerryError).code;
    }
    return 'accepted';
  };
  expect(bad({ count: 0 })).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(bad({ count: 2.5, recordedName: 'web' })).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(bad({ count: 2, name: 'web' })).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(bad({ count: 1, name: 'a', namePrefix: 'b' })).toBe('ERR_PRECHECK_BAD_INPUT');
  expect(bad({ count: 1 })).toBe('ERR_PRECHECK_BAD_INPUT');
});

test('start: one restore from a private work dir (removed after), the image is not written', async () => {
  const runtime = new FakeRuntime();
  const images = await imageOfWeb(runtime);
  const before = fingerprint(images);
  const workRoot = join(dir, 'work');
  const started = await startFromImage(runtime, { imagesDir: images, name: 'web2', workRoot });
  expect(started.container.ref.id).toBe('web2');
  expect(started.netns.mode).toBe('join'); // the original stopped: nobody is in its namespace
  const restore = runtime.calls.find((c) => c.op === 'restore')!.options as RestoreOptions;
  expect(restore.workDir).toMatch(new RegExp(`^${workRoot}/web2-`));
  expect(restore.workDir).not.toBe(images);
  expect(restore.bundle).toBeUndefined();
  expect(readdirSync(workRoot)).toEqual([]);
  expect(fingerprint(images)).toBe(before);
});

test('copies: the first joins the free namespace, the next ones get their own; all or nothing', async () => {
  const runtime = new FakeRuntime();
  const images = await imageOfWeb(runtime);
  const workRoot = join(dir, 'work');
  const started = await startCopiesFromImage(runtime, { imagesDir: images, namePrefix: 'api', count: 3, workRoot });
  expect(started.map((s) => [s.container.ref.id, s.netns.mode])).toEqual([
    ['api-1', 'join'],
    ['api-2', 'own'],
    ['api-3', 'own'],
  ]);
  expect(started[1]!.netns.holders).toEqual(['api-1']);
  expect(started[2]!.netns.holders).toEqual(['api-1']); // api-2 has a namespace of its own
  expect(started[1]!.container.netns?.path).toBe('/run/netns/ferry-ct-api-2');
  // The copy with its own namespace was restored from a bundle whose netns path does not exist.
  const second = runtime.calls.filter((c) => c.op === 'restore')[1]!.options as RestoreOptions;
  expect(second.bundle).toBeDefined();
  expect(readdirSync(workRoot)).toEqual([]);

  // A failure on the third copy removes the two this call started; nothing else is touched.
  const again = new FakeRuntime();
  const images2 = await imageOfWeb(again);
  const restores = { n: 0 };
  const restore = again.restore.bind(again);
  again.restore = async (options) => {
    if (++restores.n === 3) throw new FerryError('ERR_CRIU_RESTORE_FAILED', 'injected');
    return restore(options);
  };
  again.add('bystander');
  await expect(startCopiesFromImage(again, { imagesDir: images2, count: 3, workRoot })).rejects.toMatchObject({ code: 'ERR_CRIU_RESTORE_FAILED' });
  expect([...again.containers.keys()]).toEqual(['bystander']);
  expect(again.calls.filter((c) => c.op === 'remove').map((c) => c.id)).toEqual(['web-2', 'web-1']);
  expect(readdirSync(workRoot)).toHaveLength(1); // the failed start's work dir stays, for its logs
});

test('refusals before anything starts: no images, a taken name; a revert may reuse its own name and namespace', async () => {
  const runtime = new FakeRuntime();
  await expect(startFromImage(runtime, { imagesDir: join(dir, 'nothing') })).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  const images = await imageOfWeb(runtime);
  runtime.add('web-2');
  await expect(startCopiesFromImage(runtime, { imagesDir: images, count: 3 })).rejects.toMatchObject({
    code: 'ERR_RUNTIME_NAME_TAKEN',
    message: expect.stringContaining('web-2; nothing was started'),
  });
  expect(runtime.calls.some((c) => c.op === 'restore')).toBe(false);
  await expect(planStartFromImage(runtime, { imagesDir: images, name: 'web-2' })).rejects.toMatchObject({ code: 'ERR_RUNTIME_NAME_TAKEN' });
  // Replacing a container (a revert) may reuse its name and its namespace.
  runtime.add('web', netns);
  const plan = await planStartFromImage(runtime, { imagesDir: images, name: 'web', replacing: 'web' });
  expect(plan.netns.mode).toBe('join');
  expect(existsSync(netns)).toBe(true);
  expect(JSON.parse(readFileSync(join(images, 'ferry-container.json'), 'utf8')).id).toBe('web');
});
