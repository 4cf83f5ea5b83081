/**
 * The source walk runs over a live container's files: a directory swapped for a symlink while we walk must not take
 * the walk (and the transfer) outside the tree.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { packDir } from './pack-dir';
import { unpackDir } from './unpack-dir';
import { snapshotDir } from './snapshot-dir';
import { walkTree } from './walk-tree';

let work: string;
let src: string;
let outside: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ferry-walk-'));
  src = join(work, 'src');
  outside = join(work, 'host-dir');
  mkdirSync(join(src, 'b', 'inner'), { recursive: true });
  writeFileSync(join(src, 'a-file'), 'x'.repeat(100));
  writeFileSync(join(src, 'b', 'own'), 'own');
  mkdirSync(join(outside, 'host-subdir'), { recursive: true });
  writeFileSync(join(outside, 'host-secret'), 'secret');
  symlinkSync('/etc/shadow', join(outside, 'host-link'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** The container's move: `b` becomes a symlink to a host directory. */
function swapForSymlink(): void {
  renameSync(join(src, 'b'), join(src, 'b-away'));
  symlinkSync(outside, join(src, 'b'));
}

test('a plain walk lists the tree in pre-order', async () => {
  const paths: string[] = [];
  for await (const item of walkTree(src)) if (item.kind === 'entry') paths.push(item.path);
  expect(paths).toEqual(['.', 'a-file', 'b', 'b/inner', 'b/own']);
});

test('walkTree: a directory swapped for a symlink after it was listed is not entered', async () => {
  const paths: string[] = [];
  for await (const item of walkTree(src)) {
    if (item.kind !== 'entry') continue;
    paths.push(item.path);
    if (item.path === 'b') swapForSymlink(); // listed as a directory; its contents are read next
  }
  expect(paths.filter((p) => p.startsWith('b/'))).toEqual([]);
  expect(paths).not.toContain('b/host-secret');
});

test('walkTree: a directory swapped for another directory (not the one listed) is not entered', async () => {
  const paths: string[] = [];
  for await (const item of walkTree(src)) {
    if (item.kind !== 'entry') continue;
    paths.push(item.path);
    if (item.path === 'b') {
      renameSync(join(src, 'b'), join(src, 'b-away'));
      mkdirSync(join(src, 'b'));
      writeFileSync(join(src, 'b', 'newcomer'), 'n');
    }
  }
  expect(paths).not.toContain('b/newcomer');
});

test('snapshotDir stays inside too', async () => {
  swapForSymlink();
  const snapshot = await snapshotDir(src);
  expect(snapshot.entries.map((e) => e.path)).toEqual(['.', 'a-file', 'b', 'b-away', 'b-away/inner', 'b-away/own']);
});

test('packDir: names from the host directory never reach the destination', async () => {
  const dst = join(work, 'dst');
  const channel = new PassThrough({ highWaterMark: 1 << 20 });
  let swapped = false;
  const onProgress = () => {
    // a-file sorts before b: by the time its data is sent, b was listed as a directory but not yet read.
    if (!swapped) swapForSymlink();
    swapped = true;
  };
  await Promise.all([packDir(src, channel, { onProgress }), unpackDir(channel, dst)]);
  expect(swapped).toBe(true);
  const received = (await snapshotDir(dst)).entries.map((e) => e.path);
  expect(received.filter((p) => /host-/.test(p))).toEqual([]);
});
