import { spawn, spawnSync } from 'node:child_process';

import { allocPageAligned, listMemoryRegions, NativeError, parseMaps, PAGE_SIZE, readMemory } from './index';
import { binding } from './load-binding';
import { patternPage, spawnPatternChild, type PatternChild } from './testing';

// Spawning the pattern child and reading 300 pages off the event loop take well under a second; a loaded 2-core CI
// machine has taken more than jest's default 5 s.
jest.setTimeout(30_000);

const DATA_PAGES = 300;
const HOLE_PAGES = 3;
const TAIL_PAGES = 5;

let child: PatternChild;
beforeAll(async () => {
  child = await spawnPatternChild({ dataPages: DATA_PAGES, holePages: HOLE_PAGES, tailPages: TAIL_PAGES });
});
afterAll(() => child.kill());

const page = (n: number) => BigInt(n * PAGE_SIZE);

// The expected bytes of [address, address + length) of the child's pattern mapping.
function expected(address: bigint, length: number): Buffer {
  const first = Number((address - child.base) / BigInt(PAGE_SIZE));
  const last = Number((address + BigInt(length) - 1n - child.base) / BigInt(PAGE_SIZE));
  const pages = [];
  for (let i = first; i <= last; i++) pages.push(patternPage('page', i));
  const start = Number((address - child.base) % BigInt(PAGE_SIZE));
  return Buffer.concat(pages).subarray(start, start + length);
}

async function deadPid(): Promise<number> {
  const c = spawn('true');
  await new Promise((resolve) => c.once('exit', resolve));
  return c.pid!;
}

describe('readMemory', () => {
  it('reads another process memory exactly', async () => {
    const result = await readMemory(child.pid, [child.data]);
    expect(result.bytesRead).toBe(DATA_PAGES * PAGE_SIZE);
    expect(result.unreadable).toEqual([]);
    expect(result.data.equals(expected(child.data.address, child.data.length))).toBe(true);
  });

  it('reads many small unaligned ranges (more than IOV_MAX) back to back', async () => {
    const ranges = Array.from({ length: 3000 }, (_, i) => ({
      address: child.base + BigInt((i * 397) % (DATA_PAGES * PAGE_SIZE - 64)),
      length: 1 + (i % 50),
    }));
    for (const concurrency of [1, 2]) {
      const result = await readMemory(child.pid, ranges, { concurrency });
      const want = Buffer.concat(ranges.map((r) => expected(r.address, r.length)));
      expect(result.data.equals(want)).toBe(true);
      expect(result.unreadable).toEqual([]);
    }
  });

  it('reports the pages of an unmapped hole as unreadable and reads the rest', async () => {
    const start = child.base + page(DATA_PAGES - 2) + 100n; // unaligned, two pages before the hole
    const length = 2 * PAGE_SIZE - 100 + HOLE_PAGES * PAGE_SIZE + 2 * PAGE_SIZE;
    for (const concurrency of [1, 2]) {
      const result = await readMemory(child.pid, [{ address: start, length }], { concurrency });
      expect(result.unreadable).toEqual([{ address: child.hole.address, length: child.hole.length }]);
      expect(result.bytesRead).toBe(length - child.hole.length);
      const before = Number(child.hole.address - start);
      const after = before + child.hole.length;
      expect(result.data.subarray(0, before).equals(expected(start, before))).toBe(true);
      expect(result.data.subarray(before, after).every((b) => b === 0)).toBe(true);
      expect(result.data.subarray(after).equals(expected(child.tail.address, 2 * PAGE_SIZE))).toBe(true);
    }
  });

  it('reports each unreadable range among many, into a caller buffer', async () => {
    const ranges = [
      { address: child.hole.address + 10n, length: 20 }, // inside the hole
      child.tail,
      { address: child.base, length: 8 },
      { address: child.hole.address - 4n, length: 8 }, // straddles the start of the hole
    ];
    const into = Buffer.alloc(child.tail.length + 100, 0xee);
    const result = await readMemory(child.pid, ranges, { into });
    expect(result.unreadable).toEqual([
      { address: child.hole.address + 10n, length: 20 },
      { address: child.hole.address, length: 4 },
    ]);
    expect(result.data.buffer).toBe(into.buffer);
    expect(result.data.length).toBe(20 + child.tail.length + 16);
    expect(result.data.subarray(0, 20).every((b) => b === 0)).toBe(true);
    expect(result.data.subarray(20, 20 + child.tail.length).equals(expected(child.tail.address, child.tail.length)))
      .toBe(true);
    const rest = result.data.subarray(20 + child.tail.length);
    expect(rest.subarray(0, 8).equals(expected(child.base, 8))).toBe(true);
    expect(rest.subarray(8, 12).equals(expected(child.hole.address - 4n, 4))).toBe(true);
    expect(rest.subarray(12, 16).every((b) => b === 0)).toBe(true);
    expect(into[result.data.length]).toBe(0xee); // nothing written past the ranges
  });

  it('fails with ESRCH for a process that does not exist', async () => {
    const pid = await deadPid();
    const error = await readMemory(pid, [{ address: 0x1000n, length: 8 }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ syscall: 'process_vm_readv', code: 'ESRCH', errno: 3 });
    expect((error as Error).message).toBe(`process_vm_readv(pid=${pid}): No such process`);
  });

  it('allocates page-aligned, zeroed buffers, its own and for the caller', async () => {
    const buffer = allocPageAligned(3 * PAGE_SIZE + 5);
    expect(buffer.length).toBe(3 * PAGE_SIZE + 5);
    expect(binding().pageAlignOffset(buffer)).toBe(0);
    expect(buffer.every((b) => b === 0)).toBe(true);
    const result = await readMemory(child.pid, [{ address: child.base, length: 3 * PAGE_SIZE }]);
    expect(binding().pageAlignOffset(result.data)).toBe(0);
  });

  it('keeps a buffer out of forked children on request: refilling it after a spawn costs no copy-on-write faults', () => {
    const pages = 4096; // 16 MiB: far more faults than anything else in this test makes
    const refillFaults = (buffer: Buffer): number => {
      buffer.fill(1); // resident before the spawn
      spawnSync('true'); // node forks (libuv): every writable page of this process becomes copy-on-write
      const before = process.resourceUsage().minorPageFault;
      buffer.fill(2);
      return process.resourceUsage().minorPageFault - before;
    };
    expect(refillFaults(allocPageAligned(pages * PAGE_SIZE))).toBeGreaterThanOrEqual(pages);
    expect(refillFaults(allocPageAligned(pages * PAGE_SIZE, { keepOutOfForks: true }))).toBeLessThan(pages / 8);
    const odd = allocPageAligned(3 * PAGE_SIZE + 5, { keepOutOfForks: true });
    expect(odd.length).toBe(3 * PAGE_SIZE + 5);
    expect(binding().pageAlignOffset(odd)).toBe(0);
    expect(odd.every((b) => b === 0)).toBe(true);
  });

  it('reads nothing for no ranges', async () => {
    expect(await readMemory(child.pid, [])).toMatchObject({ bytesRead: 0, unreadable: [] });
  });

  it('checks its arguments', async () => {
    await expect(readMemory(0, [])).rejects.toThrow(RangeError);
    await expect(readMemory(1.5, [])).rejects.toThrow(TypeError);
    await expect(readMemory(child.pid, [{ address: 1, length: 1 } as never])).rejects.toThrow(/ranges\[0\]\.address/);
    await expect(readMemory(child.pid, [{ address: 1n, length: -1 }])).rejects.toThrow(RangeError);
    await expect(readMemory(child.pid, [{ address: (1n << 64n) - 1n, length: 2 }])).rejects.toThrow(/wraps/);
    await expect(readMemory(child.pid, [child.data], { into: Buffer.alloc(10) })).rejects.toThrow(/holds 10 bytes/);
    await expect(readMemory(child.pid, [], { int: Buffer.alloc(1) } as never)).rejects.toThrow(/did you mean "into"/);
  });
});

describe('listMemoryRegions', () => {
  it('lists the child mappings: the data, then the tail after a hole', async () => {
    const regions = await listMemoryRegions(child.pid);
    const data = regions.find((r) => r.start <= child.base && child.base < r.end)!;
    expect(data).toMatchObject({ perms: 'rw-p', readable: true, writable: true, executable: false, shared: false });
    expect(data.end).toBe(child.hole.address);
    expect(data.pathname).toBe('');
    const tail = regions.find((r) => r.start === child.tail.address)!;
    expect(tail.end - tail.start).toBeGreaterThanOrEqual(BigInt(child.tail.length));
    expect(regions.some((r) => r.start < child.tail.address && r.end > child.hole.address)).toBe(false);
    expect(regions.some((r) => r.pathname === '[stack]')).toBe(true);
  });

  it('fails with ENOENT for a process that does not exist', async () => {
    const pid = await deadPid();
    await expect(listMemoryRegions(pid)).rejects.toMatchObject({
      name: 'NativeError',
      code: 'ENOENT',
      syscall: 'open',
      message: `open(/proc/${pid}/maps): No such file or directory`,
    });
  });
});

describe('parseMaps', () => {
  it('parses every field, including paths with spaces and deleted files', () => {
    const text = [
      '55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1311234                    /usr/bin/cat',
      '7f1c2a000000-7f1c2a021000 rw-s 00001000 00:05 42                         /dev/shm/a file (deleted)',
      '7ffd5e8f0000-7ffd5e911000 rw-p 00000000 00:00 0                          [stack]',
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
      '7f1c2a100000-7f1c2a200000 ---p 00000000 00:00 0 ',
      '',
    ].join('\n');
    const regions = parseMaps(text);
    expect(regions).toHaveLength(5);
    expect(regions[0]).toEqual({
      start: 0x55d0c0a00000n,
      end: 0x55d0c0a02000n,
      length: 0x2000,
      perms: 'r--p',
      readable: true,
      writable: false,
      executable: false,
      shared: false,
      offset: 0n,
      dev: 'fd:01',
      inode: 1311234,
      pathname: '/usr/bin/cat',
    });
    expect(regions[1]).toMatchObject({ shared: true, offset: 0x1000n, pathname: '/dev/shm/a file (deleted)' });
    expect(regions[3]).toMatchObject({ start: 0xffffffffff600000n, executable: true, pathname: '[vsyscall]' });
    expect(regions[4]).toMatchObject({ readable: false, pathname: '' });
  });

  it('rejects text that is not /proc/PID/maps', () => {
    expect(() => parseMaps('hello world\n')).toThrow(SyntaxError);
  });
});
