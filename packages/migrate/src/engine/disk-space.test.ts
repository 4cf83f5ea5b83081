import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anonymousMemoryBytes, checkDiskSpace, DISK_SLACK_BYTES, neededBytes, treeBytes } from './disk-space';

test('what a move needs: bundle, memory unless post-copy, and slack', () => {
  const estimate = { bundleBytes: 10 << 20, memoryBytes: 64 << 20 };
  expect(neededBytes(estimate, { pagesOnDisk: true })).toBe((74 << 20) + DISK_SLACK_BYTES);
  expect(neededBytes(estimate, { pagesOnDisk: false })).toBe((10 << 20) + DISK_SLACK_BYTES);
});

test('too little free space is ERR_PRECHECK_DISK_SPACE with both numbers and a hint', () => {
  expect(() => checkDiskSpace(8 << 20, 100 << 20, 'h2', '/var/lib/ferry/migrations/x')).toThrow(
    expect.objectContaining({ code: 'ERR_PRECHECK_DISK_SPACE', message: 'h2 has 8 MiB free in /var/lib/ferry/migrations/x; this move needs about 100 MiB', hint: expect.stringContaining('nothing was frozen') }),
  );
  expect(() => checkDiskSpace(100 << 20, 100 << 20, 'h2', '/x')).not.toThrow();
});

test('the estimates read real things: a tree\'s file bytes, this process\'s anonymous memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-disk-'));
  try {
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'f'), Buffer.alloc(3000));
    writeFileSync(join(dir, 'g'), Buffer.alloc(5000));
    expect(await treeBytes(dir)).toBe(8000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const held = Buffer.alloc(32 << 20, 1); // touched: anonymous memory of this process
  expect(await anonymousMemoryBytes(process.pid)).toBeGreaterThan(held.length);
});
