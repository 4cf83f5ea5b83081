// Throughput of packDir -> PassThrough -> unpackDir on one machine, for the two shapes ferry copies:
// a CRIU image directory (a few big files) and a runc bundle (many small files).
//   npm run bench:transfer -- (node tools/dist/transfer-bench.js) [--big-mib 1024] [--big-files 4] [--small-files 20000]
//                                                         [--small-max-kib 16] [--dir /tmp] [--runs 3] [--gnu-tar] [--json]
// Data stays in the page cache (nothing is synced or dropped): this measures our pipeline, not the disk; with
// --dir /dev/shm not even the file system's own costs (creating a file on ext4 can cost more than copying it).
// Each figure is the best of --runs; the destination is removed between runs. Pack and unpack share one thread
// here, where between two hosts each has its own: the round trip is a lower bound.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { packDir, unpackDir } from '@ferry/migrate';

const MiB = 1 << 20;

interface Row {
  dataset: string;
  step: string;
  files: number;
  mib: number;
  seconds: number;
  mibPerSecond: number;
  filesPerSecond: number;
}

function makeBigDir(dir: string, totalMib: number, files: number): void {
  mkdirSync(dir, { recursive: true });
  const block = randomFillSync(Buffer.allocUnsafe(16 * MiB));
  const perFile = Math.floor(totalMib / files);
  for (let f = 0; f < files; f++) {
    const path = join(dir, `pages-${f + 1}.img`);
    writeFileSync(path, '');
    for (let written = 0; written < perFile; written += 16) {
      const n = Math.min(16, perFile - written);
      block.writeUInt32LE(f * 1_000_000 + written, 0); // no two blocks alike
      writeFileSync(path, block.subarray(0, n * MiB), { flag: 'a' });
    }
  }
}

function makeSmallDir(dir: string, files: number, maxKib: number): void {
  const perDir = 100;
  const data = randomFillSync(Buffer.allocUnsafe(maxKib * 1024));
  let seed = 1;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${Math.floor(i / perDir / 10)}`, `e${Math.floor(i / perDir)}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}`), data.subarray(0, next() % (maxKib * 1024 + 1)));
  }
}

interface Timed {
  files: number;
  bytes: number;
  seconds: number;
}

/** Best of `runs`; `after` cleans up between runs (untimed). */
async function timed(runs: number, fn: () => Promise<{ files: number; bytes: number }>, after: () => void = () => undefined): Promise<Timed> {
  let best: Timed | undefined;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const stats = await fn();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    after();
    if (best === undefined || seconds < best.seconds) best = { ...stats, seconds };
  }
  return best as Timed;
}

function row(dataset: string, step: string, r: Timed): Row {
  const mib = r.bytes / MiB;
  return { dataset, step, files: r.files, mib, seconds: r.seconds, mibPerSecond: mib / r.seconds, filesPerSecond: r.files / r.seconds };
}

async function benchDataset(name: string, src: string, scratch: string, runs: number, gnuTar: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const dst = join(scratch, 'dst');
  const clean = () => rmSync(dst, { recursive: true, force: true });

  // pack alone, into a sink that drops everything
  const sink = () => new Writable({ highWaterMark: MiB, write: (_c, _e, cb) => cb() });
  rows.push(row(name, 'pack -> null', await timed(runs, () => packDir(src, sink()))));

  // pack into memory, then unpack alone from it
  const chunks: Buffer[] = [];
  const memory = new Writable({ highWaterMark: MiB, write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
  await packDir(src, memory);
  rows.push(row(name, 'memory -> unpack', await timed(runs, () => unpackDir(PassThrough.from(chunks), dst), clean)));
  chunks.length = 0;

  // the real thing: both ends through one PassThrough with 1 MiB buffers, like an SSH channel
  const roundTrip = await timed(
    runs,
    async () => {
      const channel = new PassThrough({ highWaterMark: MiB });
      const [sent] = await Promise.all([packDir(src, channel), unpackDir(channel, dst)]);
      return sent;
    },
    clean,
  );
  rows.push(row(name, 'pack -> PassThrough -> unpack', roundTrip));

  if (gnuTar) {
    const tarred = await timed(
      runs,
      async () => {
        mkdirSync(dst);
        execFileSync('sh', ['-c', 'tar -C "$1" -cf - . | tar -C "$2" -xpf -', 'sh', src, dst]);
        return roundTrip;
      },
      clean,
    );
    rows.push(row(name, 'GNU tar | GNU tar (reference)', tarred));
  }
  return rows;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'big-mib': { type: 'string', default: '1024' },
      'big-files': { type: 'string', default: '4' },
      'small-files': { type: 'string', default: '20000' },
      'small-max-kib': { type: 'string', default: '16' },
      dir: { type: 'string', default: tmpdir() },
      runs: { type: 'string', default: '3' },
      'gnu-tar': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const bigMib = Number(values['big-mib']);
  const bigFiles = Number(values['big-files']);
  const smallFiles = Number(values['small-files']);
  const smallMaxKib = Number(values['small-max-kib']);
  const runs = Number(values.runs);
  if (!(bigMib >= 1 && bigFiles >= 1 && smallFiles >= 1 && smallMaxKib >= 0 && runs >= 1)) throw new RangeError('sizes and counts must be positive');

  const scratch = mkdtempSync(join(values.dir, 'ferry-transfer-bench-'));
  try {
    const big = join(scratch, 'images');
    const small = join(scratch, 'bundle');
    makeBigDir(big, bigMib, bigFiles);
    makeSmallDir(small, smallFiles, smallMaxKib);
    const rows = [
      ...(await benchDataset(`images (${bigFiles} x ${Math.floor(bigMib / bigFiles)} MiB)`, big, scratch, runs, values['gnu-tar'])),
      ...(await benchDataset(`bundle (${smallFiles} files <= ${smallMaxKib} KiB)`, small, scratch, runs, values['gnu-tar'])),
    ];
    if (values.json) {
      process.stdout.write(`${JSON.stringify(rows)}\n`);
      return;
    }
    for (const r of rows) {
      process.stdout.write(
        `${r.dataset.padEnd(34)} ${r.step.padEnd(32)} ${r.mib.toFixed(0).padStart(6)} MiB ${String(r.files).padStart(6)} entries ` +
          `${r.seconds.toFixed(2).padStart(6)} s ${r.mibPerSecond.toFixed(0).padStart(6)} MiB/s ${r.filesPerSecond.toFixed(0).padStart(7)} entries/s\n`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
