import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskEntries, summariseDiskUsage } from './disk-usage';

test('per owner each inode once; the total counts inodes shared between owners once', () => {
  const usage = summariseDiskUsage({
    a: [
      { dev: 1, ino: 10, bytes: 4096 },
      { dev: 1, ino: 11, bytes: 8192 },
      { dev: 1, ino: 11, bytes: 8192 }, // a hard link inside a
    ],
    b: [
      { dev: 1, ino: 11, bytes: 8192 }, // shared with a
      { dev: 1, ino: 12, bytes: 1024 },
      { dev: 2, ino: 10, bytes: 512 }, // same inode number, other device
    ],
  });
  expect(usage.byOwner).toEqual({ a: 4096 + 8192, b: 8192 + 1024 + 512 });
  expect(usage.totalBytes).toBe(4096 + 8192 + 1024 + 512);
  expect(summariseDiskUsage({})).toEqual({ byOwner: {}, totalBytes: 0 });
});

test('entries: allocated blocks of the files under a directory, links not followed; missing dir: none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-du-'));
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'big'), Buffer.alloc(100_000, 1));
    linkSync(join(dir, 'big'), join(dir, 'sub', 'same'));
    symlinkSync('/usr', join(dir, 'parent'));
    const entries = await diskEntries(dir);
    expect(entries).toHaveLength(5); // dir, sub, big, sub/same (same inode), parent (the link itself)
    const usage = summariseDiskUsage({ x: entries });
    const big = statSync(join(dir, 'big')).blocks * 512;
    expect(big).toBeGreaterThanOrEqual(100_000);
    expect(usage.totalBytes).toBeGreaterThanOrEqual(big);
    expect(usage.totalBytes).toBeLessThan(2 * big); // the hard link is not counted twice
    expect(await diskEntries(join(dir, 'missing'))).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
