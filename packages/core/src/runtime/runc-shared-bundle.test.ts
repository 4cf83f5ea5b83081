import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECORD_FORMAT, writeCheckpointRecord } from './checkpoint-record';
import { placeRecordedRuncConfig } from './runc-shared-bundle';
import type { OciConfig } from './runc-state';

const criu = { tcpEstablished: true, fileLocks: false, extUnixSk: false, leaveRunning: false };
let dir: string;
let source: string;
let images: string;
let bundle: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-shared-bundle-'));
  source = join(dir, 'shared', 'web'); // the source's bundle, on storage both hosts see
  mkdirSync(join(source, 'rootfs'), { recursive: true });
  images = join(dir, 'migration', 'images');
  bundle = join(dir, 'migration', 'bundle'); // the destination's: empty, nothing was copied
  mkdirSync(images, { recursive: true });
  mkdirSync(bundle);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function record(config: OciConfig, bundlePath = source): void {
  writeCheckpointRecord(images, { format: RECORD_FORMAT, runtime: 'runc', id: 'web', bundle: bundlePath, config, criu, checkpointedAt: 't' });
}

const relative: OciConfig = {
  root: { path: 'rootfs' },
  mounts: [
    { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw'] },
    { destination: '/etc/hosts', source: '/srv/hosts', options: ['bind', 'ro'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
  ],
  linux: { cgroupsPath: '/ferry/web' },
};

test('a relative root and relative bind sources are the source bundle\'s, written into the empty bundle', () => {
  record(relative);
  const placed = placeRecordedRuncConfig(bundle, images);
  const written = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciConfig;
  expect(written).toEqual(placed);
  expect(written.root?.path).toBe(join(source, 'rootfs'));
  expect(written.mounts?.map((m) => m.source)).toEqual([join(source, 'data'), '/srv/hosts', 'tmpfs']);
  expect(written.linux?.cgroupsPath).toBe('/ferry/web');
  expect(statSync(join(bundle, 'config.json')).mode & 0o777).toBe(0o600);
});

test('an absolute root is kept', () => {
  record({ root: { path: join(source, 'rootfs') } });
  expect(placeRecordedRuncConfig(bundle, images)?.root?.path).toBe(join(source, 'rootfs'));
});

test('a copied bundle keeps its own config.json', () => {
  record(relative);
  writeFileSync(join(bundle, 'config.json'), '{"root":{"path":"rootfs"}}');
  expect(placeRecordedRuncConfig(bundle, images)).toBeUndefined();
  expect(readFileSync(join(bundle, 'config.json'), 'utf8')).toBe('{"root":{"path":"rootfs"}}');
});

test('without a runc record nothing is written', () => {
  expect(placeRecordedRuncConfig(bundle, images)).toBeUndefined();
  expect(() => readFileSync(join(bundle, 'config.json'))).toThrow(/ENOENT/);
});

test('a root this host does not see is refused with its path, nothing written', () => {
  record(relative, join(dir, 'elsewhere', 'web'));
  let error: unknown;
  try {
    placeRecordedRuncConfig(bundle, images);
  } catch (err) {
    error = err;
  }
  expect(error).toMatchObject({ code: 'ERR_PRECHECK_STORAGE_NOT_COPIED', details: { root: join(dir, 'elsewhere', 'web', 'rootfs') } });
  expect((error as { hint?: string }).hint).toMatch(/without --shared-storage/);
  expect(() => readFileSync(join(bundle, 'config.json'))).toThrow(/ENOENT/);
});

test('a config.json planted as a symlink is refused, never followed', () => {
  record(relative);
  writeFileSync(join(dir, 'target'), '{}');
  symlinkSync(join(dir, 'target'), join(bundle, 'config.json'));
  expect(() => placeRecordedRuncConfig(bundle, images)).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_UNSAFE_PATH' }));
  expect(readFileSync(join(dir, 'target'), 'utf8')).toBe('{}');
});
