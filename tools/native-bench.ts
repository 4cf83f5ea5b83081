// Throughput of the memory primitives on another process's memory, against the memcpy ceiling, in one run:
//   npm run bench:native -- (node tools/dist/native-bench.js) [--size-mib 1024] [--zero-mib 256] [--runs 3] [--json]
// The pattern child holds --size-mib of non-repeating, non-zero data and --zero-mib of written zeros. Every figure is
// the best of --runs, into buffers that are already faulted in, so that page faults on our side are not measured.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

import { allocPageAligned, findZeroPages, hashPages, readMemory, readPagemap } from '@ferry/native';
import { memcpyBench, spawnPatternChild } from '@ferry/native/testing';

const GOAL_READ_VS_MEMCPY = 0.5;
const GOAL_HASH_GIB_PER_CORE = 4;

interface Row {
  name: string;
  gibPerSecond: number;
  /** Fraction of the memcpy ceiling. */
  vsMemcpy: number;
}

async function best(runs: number, bytes: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return bytes / 2 ** 30 / fastest;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      'zero-mib': { type: 'string', default: '256' },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const sizeMib = Number(values['size-mib']);
  const zeroMib = Number(values['zero-mib']);
  const runs = Number(values.runs);
  if (!(sizeMib >= 1 && zeroMib >= 1 && runs >= 1)) throw new RangeError('--size-mib, --zero-mib and --runs must be >= 1');
  const size = sizeMib << 20;
  const zeroSize = zeroMib << 20;
  const cores = availableParallelism();

  const child = await spawnPatternChild({ pattern: 'random', dataPages: size / 4096, zeroPages: zeroSize / 4096 });
  try {
    // Page-aligned, like readMemory's own buffers, and faulted in before anything is timed.
    const dest = allocPageAligned(size).fill(1);
    const src = allocPageAligned(size).fill(0x5a);
    const zeroDest = allocPageAligned(zeroSize).fill(1);

    let memcpySeconds = Infinity;
    for (let i = 0; i < runs; i++) memcpySeconds = Math.min(memcpySeconds, memcpyBench(dest, src));
    const memcpy = size / 2 ** 30 / memcpySeconds;
    const rows: Row[] = [];
    const add = (name: string, gibPerSecond: number) => rows.push({ name, gibPerSecond, vsMemcpy: gibPerSecond / memcpy });
    add('memcpy (C++, 1 thread)', memcpy);

    const read = (concurrency: number) => readMemory(child.pid, [child.data], { into: dest, concurrency });
    add('read: process_vm_readv, 1 worker', await best(runs, size, () => read(1)));
    add(`read: process_vm_readv, ${cores} workers`, await best(runs, size, () => read(cores)));
    const check = await read(cores);
    if (check.unreadable.length > 0) throw new Error('benchmark: the pattern child has unreadable pages');

    add('hash: XXH3 pages, 1 worker', await best(runs, size, () => hashPages(dest, { concurrency: 1 })));
    add(`hash: XXH3 pages, ${cores} workers`, await best(runs, size, () => hashPages(dest, { concurrency: cores })));
    add(
      `hash + zero mask, ${cores} workers`,
      await best(runs, size, () => hashPages(dest, { zero: true, concurrency: cores })),
    );

    await readMemory(child.pid, [child.zero], { into: zeroDest });
    const zeroMask = await findZeroPages(zeroDest);
    if (!zeroMask.every((z) => z === 1)) throw new Error('benchmark: the zero region is not all zero');
    add('zero pages (all zero), 1 worker', await best(runs, zeroSize, () => findZeroPages(zeroDest, { concurrency: 1 })));
    add(`zero pages (all zero), ${cores} workers`, await best(runs, zeroSize, () => findZeroPages(zeroDest)));
    add('zero pages (no zero), 1 worker', await best(runs, size, () => findZeroPages(dest, { concurrency: 1 })));

    add('pagemap: PAGEMAP_SCAN', await best(runs, size, () => readPagemap(child.pid, child.data, { method: 'scan' })));
    add('pagemap: pread', await best(runs, size, () => readPagemap(child.pid, child.data, { method: 'read' })));

    const readAll = rows.find((r) => r.name.startsWith(`read: process_vm_readv, ${cores}`))!;
    const hashOne = rows.find((r) => r.name === 'hash: XXH3 pages, 1 worker')!;
    const goals = {
      readVsMemcpy: { goal: GOAL_READ_VS_MEMCPY, measured: readAll.vsMemcpy, met: readAll.vsMemcpy >= GOAL_READ_VS_MEMCPY },
      hashGibPerCore: {
        goal: GOAL_HASH_GIB_PER_CORE,
        measured: hashOne.gibPerSecond,
        met: hashOne.gibPerSecond >= GOAL_HASH_GIB_PER_CORE,
      },
    };

    if (values.json) {
      console.log(JSON.stringify({ sizeMib, zeroMib, runs, cores, rows, goals }));
      return;
    }
    console.log(`@ferry/native benchmark: ${sizeMib} MiB of another process (+${zeroMib} MiB zeros), ${cores} CPUs, best of ${runs}`);
    console.log(`${'operation'.padEnd(40)} ${'GiB/s'.padStart(8)} ${'vs memcpy'.padStart(10)}`);
    for (const row of rows) {
      console.log(
        `${row.name.padEnd(40)} ${row.gibPerSecond.toFixed(2).padStart(8)} ${`${(row.vsMemcpy * 100).toFixed(0)}%`.padStart(10)}`,
      );
    }
    console.log(
      `goals: read >= ${GOAL_READ_VS_MEMCPY * 100}% of memcpy: ${goals.readVsMemcpy.met ? 'met' : 'NOT met'} ` +
        `(${(readAll.vsMemcpy * 100).toFixed(0)}%); hash >= ${GOAL_HASH_GIB_PER_CORE} GiB/s per core: ` +
        `${goals.hashGibPerCore.met ? 'met' : 'NOT met'} (${hashOne.gibPerSecond.toFixed(2)})`,
    );
  } finally {
    await child.kill();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
