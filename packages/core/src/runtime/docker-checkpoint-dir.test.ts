import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readPagemap } from '../image/image-records';
import { PE_FLAGS } from '../image/image-schema';
import { writeSyntheticImageDir } from '../image/synthetic-images';
import { parentLinkTarget, writeParentLinkedCheckpoint } from './docker-checkpoint-dir';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-dk-cpdir-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('the checkpoint keeps every image but the pages, and its pagemaps read every range from the parent', async () => {
  const images = join(dir, 'images');
  await writeSyntheticImageDir(images, {
    tasks: [{ pid: 1, ranges: [{ nrPages: 3 }, { nrPages: 2, flags: PE_FLAGS.PRESENT | PE_FLAGS.LAZY }, { nrPages: 4, flags: PE_FLAGS.PARENT }] }],
    shmem: [{ id: 7, ranges: [{ nrPages: 1 }] }],
  });
  const checkpoint = join(dir, 'containers', 'abc', 'checkpoints', 'ferry-1');
  await writeParentLinkedCheckpoint(images, checkpoint);

  expect(statSync(checkpoint).mode & 0o777).toBe(0o700);
  expect(statSync(join(checkpoint, 'pages-1.img')).size).toBe(0);
  expect(statSync(join(images, 'pages-1.img')).size).toBe(5 * 4096); // the parent keeps the memory
  // Same ranges, same pages ids; only where the pages are changed.
  const before = await readPagemap(join(images, 'pagemap-1.img'));
  const after = await readPagemap(join(checkpoint, 'pagemap-1.img'));
  expect(after.pagesId).toBe(before.pagesId);
  expect(after.ranges.map((r) => [r.vaddr, r.nrPages])).toEqual(before.ranges.map((r) => [r.vaddr, r.nrPages]));
  expect(after.ranges.map((r) => r.flags)).toEqual([PE_FLAGS.PARENT, PE_FLAGS.PARENT, PE_FLAGS.PARENT]);
  expect((await readPagemap(join(checkpoint, 'pagemap-shmem-7.img'))).ranges[0]!.flags).toBe(PE_FLAGS.PARENT);
  // Other images are the same files (hard links), and the parent link leads back to the images from anywhere.
  expect(statSync(join(checkpoint, 'pstree.img')).ino).toBe(statSync(join(images, 'pstree.img')).ino);
  expect(lstatSync(join(checkpoint, 'parent')).isSymbolicLink()).toBe(true);
  expect(resolve(checkpoint, readlinkSync(join(checkpoint, 'parent')))).toBe(images);
  expect(readFileSync(join(checkpoint, 'parent', 'pages-1.img')).length).toBe(5 * 4096);
});

test('the parent link climbs to / first, so it resolves wherever containerd unpacks the checkpoint', () => {
  const target = parentLinkTarget('/var/lib/ferry/migrations/x/images');
  for (const from of ['/tmp/ctrd-checkpoint123', '/run/a/b/c/d/e/f', '/']) expect(resolve(from, target)).toBe('/var/lib/ferry/migrations/x/images');
  expect(target.startsWith('/')).toBe(false);
});
