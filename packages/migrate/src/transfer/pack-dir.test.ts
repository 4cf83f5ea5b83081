import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isFerryError } from '@ferry/core';
import { diffSnapshots, RACY_WINDOW_MS } from './diff-snapshots';
import { packDir, type PackOptions } from './pack-dir';
import { snapshotDir } from './snapshot-dir';
import type { DirSnapshot, TransferEvent } from './transfer-types';
import { unpackDir, type UnpackOptions } from './unpack-dir';

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ferry-transfer-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const MiB = 1 << 20;

/** Seconds with a sub-second part, as utimes takes them. */
const T = (s: number) => 1_600_000_000 + s + 0.123456;

function buildTree(root: string): void {
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  mkdirSync(join(root, 'locked'));
  writeFileSync(join(root, 'a/b/c/deep.txt'), 'deep\n');
  writeFileSync(join(root, 'a/hello.txt'), 'hello\n');
  writeFileSync(join(root, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'secret'), 'shh', { mode: 0o600 });
  linkSync(join(root, 'secret'), join(root, 'hard-link')); // arrives as a second, independent copy
  writeFileSync(join(root, 'nobody-may-read'), 'x');
  chmodSync(join(root, 'nobody-may-read'), 0o000);
  writeFileSync(join(root, 'setuid'), 'suid');
  chownSync(join(root, 'setuid'), 1234, 5678);
  chmodSync(join(root, 'setuid'), 0o4755);
  writeFileSync(join(root, 'big-ids'), 'ids'); // above ustar's 0o777777, as in user-namespaced rootfs
  chownSync(join(root, 'big-ids'), 300_000, 400_000);
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'big.img'), randomBytes(20 * MiB));
  writeFileSync(join(root, `${'long-name-'.repeat(12)}.txt`), 'long');
  writeFileSync(join(root, 'a/ünïcødé and spaces'), 'utf8');
  symlinkSync('/bin/busybox', join(root, 'sh')); // absolute, dangling here
  symlinkSync('../hello.txt', join(root, 'a/b/rel-link')); // relative
  symlinkSync('nowhere/at/all', join(root, 'dangling'));
  symlinkSync(`/${'x'.repeat(150)}`, join(root, 'long-target'));
  lchownSync(join(root, 'sh'), 42, 43);
  chmodSync(join(root, 'locked'), 0o555);
  chmodSync(join(root, 'a/b'), 0o711);
  // Times last: creating entries changes their directories' mtimes.
  let i = 0;
  for (const p of ['a/b/c/deep.txt', 'a/hello.txt', 'script.sh', 'secret', 'big.img', 'a/b/c', 'a/b', 'empty', 'locked', 'a', '.']) {
    utimesSync(join(root, p), T(i), T(++i));
  }
  lutimesSync(join(root, 'sh'), T(100), T(101));
}

/** What must be equal between two directories: not the root's path, ctimes or start times; mtimes come apart. */
function comparable(snapshot: DirSnapshot) {
  return snapshot.entries.map(({ ctimeMs, mtimeMs, ...rest }) => (void ctimeMs, void mtimeMs, rest));
}

/**
 * fs.utimes takes seconds as a double (~0.24 us apart at today's dates) and mtimeMs is a double too: the source's
 * nanoseconds arrive within a few of those steps.
 */
const MTIME_TOLERANCE_MS = 0.002;

function expectSameMtimes(a: DirSnapshot, b: DirSnapshot): void {
  expect(b.entries.map((e) => e.path)).toEqual(a.entries.map((e) => e.path));
  const off = a.entries.filter((e, i) => Math.abs((b.entries[i]?.mtimeMs ?? 0) - e.mtimeMs) > MTIME_TOLERANCE_MS);
  expect(off.map((e) => e.path)).toEqual([]);
}

function hashes(root: string, snapshot: DirSnapshot): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of snapshot.entries) {
    if (e.type === 'file') out[e.path] = createHash('sha256').update(readFileSync(join(root, e.path))).digest('hex');
  }
  return out;
}

async function expectIdentical(src: string, dst: string): Promise<void> {
  const [a, b] = [await snapshotDir(src), await snapshotDir(dst)];
  expect(comparable(b)).toEqual(comparable(a));
  expectSameMtimes(a, b);
  expect(hashes(dst, b)).toEqual(hashes(src, a));
}

async function transfer(src: string, dst: string, pack: PackOptions = {}, unpack: UnpackOptions = {}) {
  const channel = new PassThrough({ highWaterMark: MiB });
  const [sent, received] = await Promise.all([packDir(src, channel, pack), unpackDir(channel, dst, unpack)]);
  return { sent, received };
}

test('a tree survives the round trip: nested and empty dirs, symlinks, modes, owners, mtimes, a 20 MiB file', async () => {
  const src = join(work, 'src');
  const dst = join(work, 'dst');
  mkdirSync(src);
  buildTree(src);
  const progress: number[] = [];
  const written: number[] = [];
  const { sent, received } = await transfer(src, dst, { onProgress: (b) => progress.push(b) }, { onProgress: (b) => written.push(b) });

  await expectIdentical(src, dst);
  const snapshot = await snapshotDir(dst);
  const byPath = new Map(snapshot.entries.map((e) => [e.path, e]));
  expect(byPath.get('script.sh')?.mode).toBe(0o755);
  expect(byPath.get('secret')?.mode).toBe(0o600);
  expect(byPath.get('nobody-may-read')?.mode).toBe(0o000);
  expect(byPath.get('setuid')).toMatchObject({ mode: 0o4755, uid: 1234, gid: 5678 });
  expect(byPath.get('big-ids')).toMatchObject({ uid: 300_000, gid: 400_000 });
  expect(byPath.get('locked')?.mode).toBe(0o555);
  expect(byPath.get('empty')?.type).toBe('dir');
  expect(byPath.get('sh')).toMatchObject({ type: 'symlink', linkTarget: '/bin/busybox', uid: 42, gid: 43 });
  expect(byPath.get('dangling')?.linkTarget).toBe('nowhere/at/all');
  expect(byPath.get('a/b/rel-link')?.linkTarget).toBe('../hello.txt');
  expect(byPath.get('big.img')?.mtimeMs).toBeCloseTo(T(5) * 1000, 3);

  expect(sent).toEqual(received);
  expect(sent.files).toBe(snapshot.entries.length);
  expect(sent.bytes).toBe(snapshot.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0));
  expect(progress.at(-1)).toBe(sent.bytes);
  expect(written.at(-1)).toBe(sent.bytes);
  expect(readFileSync(join(dst, 'hard-link'), 'utf8')).toBe('shh');
  expect(lstatSync(join(dst, 'hard-link')).ino).not.toBe(lstatSync(join(dst, 'secret')).ino);
  // No temporary files left behind.
  expect(snapshot.entries.filter((e) => e.path.includes('.ferry-tmp-'))).toEqual([]);
});

test('incremental: a changed, an added and a deleted file are re-sent and the trees end up identical', async () => {
  const src = join(work, 'src');
  const dst = join(work, 'dst');
  mkdirSync(src);
  buildTree(src);
  writeFileSync(join(src, 'a/b/c/doomed'), 'bye');
  await sleep(RACY_WINDOW_MS + 20); // nothing in the tree is racily clean for `before`
  const before = await snapshotDir(src);
  await transfer(src, dst);

  writeFileSync(join(src, 'a/hello.txt'), 'HELLO\n'); // same size, new content
  writeFileSync(join(src, 'a/b/c/new.txt'), 'new');
  rmSync(join(src, 'a/b/c/doomed'));
  const after = await snapshotDir(src);
  const diff = diffSnapshots(before, after);
  expect(diff).toEqual({ changed: ['a/b/c', 'a/b/c/new.txt', 'a/hello.txt'], deleted: ['a/b/c/doomed'] });

  const { sent, received } = await transfer(src, dst, { only: diff.changed, deleted: diff.deleted });
  expect(sent).toEqual({ files: 3, bytes: 9 });
  expect(received).toEqual(sent);
  await expectIdentical(src, dst);
});

test('incremental: entries that change type on the source change type on the destination', async () => {
  const src = join(work, 'src');
  const dst = join(work, 'dst');
  mkdirSync(join(src, 'was-dir/sub'), { recursive: true });
  writeFileSync(join(src, 'was-dir/sub/f'), 'f');
  writeFileSync(join(src, 'was-file'), 'f');
  symlinkSync('/etc', join(src, 'was-link'));
  await sleep(RACY_WINDOW_MS + 20);
  const before = await snapshotDir(src);
  await transfer(src, dst);

  rmSync(join(src, 'was-dir'), { recursive: true });
  writeFileSync(join(src, 'was-dir'), 'now a file');
  rmSync(join(src, 'was-file'));
  mkdirSync(join(src, 'was-file'));
  writeFileSync(join(src, 'was-file/inner'), 'inner');
  rmSync(join(src, 'was-link'));
  mkdirSync(join(src, 'was-link'));
  writeFileSync(join(src, 'was-link/passwd'), 'not the host one');
  const diff = diffSnapshots(before, await snapshotDir(src));
  await transfer(src, dst, { only: diff.changed, deleted: diff.deleted });
  await expectIdentical(src, dst);
  expect(readFileSync('/etc/passwd', 'utf8')).not.toBe('not the host one');
});

test('device nodes, fifos and names that are not UTF-8 are skipped with a warning', async () => {
  const src = join(work, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'regular'), 'r');
  writeFileSync(Buffer.concat([Buffer.from(`${src}/bad-`), Buffer.from([0xff, 0xfe])]), 'latin1 name');
  execFileSync('mknod', [join(src, 'null'), 'c', '1', '3']);
  execFileSync('mknod', [join(src, 'loop'), 'b', '7', '200']);
  execFileSync('mkfifo', [join(src, 'fifo')]);
  const events: TransferEvent[] = [];
  const snapshot = await snapshotDir(src);
  expect(snapshot.skipped.map((s) => [s.path, s.reason, s.kind])).toEqual([
    ['bad-\ufffd\ufffd', 'non-utf8-name', 'file'],
    ['fifo', 'special-file', 'fifo'],
    ['loop', 'special-file', 'block-device'],
    ['null', 'special-file', 'character-device'],
  ]);
  await transfer(src, join(work, 'dst'), { onEvent: (e) => events.push(e) });
  expect(events.map((e) => [e.type, e.reason, e.path])).toEqual([
    ['warning', 'non-utf8-name', 'bad-\ufffd\ufffd'],
    ['warning', 'special-file', 'fifo'],
    ['warning', 'special-file', 'loop'],
    ['warning', 'special-file', 'null'],
  ]);
  expect(existsSync(join(work, 'dst/regular'))).toBe(true);
  expect(existsSync(join(work, 'dst/null'))).toBe(false);
});

test('`only` never reaches through a symlinked parent on the source', async () => {
  const src = join(work, 'src');
  const outside = join(work, 'outside');
  mkdirSync(src);
  mkdirSync(outside);
  writeFileSync(join(outside, 'host-secret'), 'secret');
  symlinkSync(outside, join(src, 'link'));
  const { sent } = await transfer(src, join(work, 'dst'), { only: ['link/host-secret'] });
  expect(sent.files).toBe(0);
  expect(existsSync(join(work, 'dst/link'))).toBe(false);
});

test('bad `only` paths are refused before anything is sent', async () => {
  const src = join(work, 'src');
  mkdirSync(src);
  const sink = new PassThrough();
  await expect(packDir(src, sink, { only: ['../etc/passwd'] })).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  await expect(packDir(src, sink, { deleted: ['/etc'] })).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  await expect(packDir(join(work, 'missing'), sink)).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  expect(sink.readableLength).toBe(0);
});

test('dirMode makes every directory written 0700 (CRIU image directories)', async () => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'images/1'), { recursive: true });
  writeFileSync(join(src, 'images/1/pages-1.img'), randomBytes(3 * MiB));
  chmodSync(join(src, 'images/1/pages-1.img'), 0o600);
  const dst = join(work, 'new/dst');
  await transfer(src, dst, {}, { dirMode: 0o700 });
  const snapshot = await snapshotDir(dst);
  expect(snapshot.entries.filter((e) => e.type === 'dir').map((e) => [e.path, e.mode])).toEqual([
    ['.', 0o700],
    ['images', 0o700],
    ['images/1', 0o700],
  ]);
  expect(snapshot.entries.find((e) => e.path === 'images/1/pages-1.img')?.mode).toBe(0o600);
});

test('aborting packDir rejects with ERR_ABORTED and leaves the stream to its owner', async () => {
  const src = join(work, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'big.img'), randomBytes(8 * MiB));
  const controller = new AbortController();
  // A slow reader: the abort comes while the big file is in flight.
  const slow = new Writable({
    highWaterMark: 64 << 10,
    write(_chunk, _enc, cb) {
      setTimeout(cb, 5);
    },
  });
  const packing = packDir(src, slow, { signal: controller.signal, onProgress: (b) => b > 2 * MiB && controller.abort() });
  await expect(packing).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  expect(slow.destroyed).toBe(false);
  expect(slow.writableEnded).toBe(false);
});

test('a writable that fails makes packDir fail with ERR_TRANSPORT_CLOSED', async () => {
  const src = join(work, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'big.img'), randomBytes(4 * MiB));
  let written = 0;
  const broken = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      cb(written > MiB ? new Error('channel reset') : null);
    },
  });
  const err: unknown = await packDir(src, broken).catch((e: unknown) => e);
  expect(isFerryError(err, 'ERR_TRANSPORT_CLOSED')).toBe(true);
  expect((err as Error).message).toMatch(/channel reset/);
});
