// Helpers for tests (this package's and others') and the benchmark: a child process with memory of known content,
// and the memcpy ceiling. Not part of the public API.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { binding } from './load-binding';
import type { MemoryRange } from './memory-regions';
import { PAGE_SIZE } from './page-hash';
import type { ByteArray } from './validate';

const SOURCE = path.resolve(__dirname, '..', 'fixtures', 'pattern-child.c');
const CFLAGS = ['-O2', '-Wall'];

export type Pattern = 'page' | 'random';

export interface PatternChildOptions {
  /** 'page' (default): every word of page i is the same value, different per page. 'random': nothing repeats. */
  pattern?: Pattern;
  /** Pages of pattern at `data.address` (default 64). */
  dataPages?: number;
  /** Unmapped pages right after the data (default 0). */
  holePages?: number;
  /** Pattern pages right after the hole (default 0); their pattern index continues after the hole. */
  tailPages?: number;
  /** Pages mapped of which only the even ones were written (default 0). */
  sparsePages?: number;
  /** Pages written with zeros (default 0). */
  zeroPages?: number;
}

export interface PatternChild {
  pid: number;
  pattern: Pattern;
  /** Start of the mapping: data, then hole, then tail. Page index i of the pattern is at base + i * 4096. */
  base: bigint;
  data: MemoryRange;
  hole: MemoryRange;
  tail: MemoryRange;
  sparse: MemoryRange;
  zero: MemoryRange;
  /** SIGKILLs the child and waits for it to be gone. Idempotent. */
  kill(): Promise<void>;
}

/** The pattern's 64-bit word `word` (0..511) of page `page` (counted from PatternChild.base). */
export function patternWord(pattern: Pattern, page: number, word: number): bigint {
  if (pattern === 'page') return BigInt.asUintN(64, BigInt(page + 1) * 0x9e3779b97f4a7c15n);
  return splitmix64(BigInt(page) * BigInt(PAGE_SIZE / 8) + BigInt(word));
}

/** Page `page` of the pattern, as the child has it. */
export function patternPage(pattern: Pattern, page: number): Buffer {
  const out = Buffer.alloc(PAGE_SIZE);
  for (let w = 0; w < PAGE_SIZE / 8; w++) out.writeBigUInt64LE(patternWord(pattern, page, w), w * 8);
  return out;
}

function splitmix64(k: bigint): bigint {
  let x = BigInt.asUintN(64, k + 0x9e3779b97f4a7c15n);
  x = BigInt.asUintN(64, (x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n);
  x = BigInt.asUintN(64, (x ^ (x >> 27n)) * 0x94d049bb133111ebn);
  return x ^ (x >> 31n);
}

let compiled: Promise<string> | undefined;

/**
 * Compiles fixtures/pattern-child.c with `cc` once per source version into the temp dir (shared by jest workers
 * and runs: the binary's name is the source's hash) and returns the binary's path.
 */
export function compilePatternChild(): Promise<string> {
  compiled ??= (async () => {
    const source = readFileSync(SOURCE);
    const hash = createHash('sha256').update(source).update(CFLAGS.join(' ')).digest('hex').slice(0, 16);
    const dir = path.join(tmpdir(), 'ferry-native-fixtures');
    const binary = path.join(dir, `pattern-child-${hash}`);
    if (existsSync(binary)) return binary;
    mkdirSync(dir, { recursive: true });
    const partial = `${binary}.${process.pid}.tmp`;
    try {
      await promisify(execFile)('cc', [...CFLAGS, '-o', partial, SOURCE]);
    } catch (error) {
      throw new Error(`compilePatternChild: cc failed (needs a C compiler): ${(error as Error).message}`, {
        cause: error,
      });
    }
    renameSync(partial, binary); // atomic: a concurrent worker sees no binary or a whole one
    return binary;
  })();
  compiled.catch(() => {
    compiled = undefined;
  });
  return compiled;
}

/** Starts pattern-child and waits for its layout line. Kill it with `kill()` (it also exits when we do). */
export async function spawnPatternChild(options: PatternChildOptions = {}): Promise<PatternChild> {
  const {
    pattern = 'page',
    dataPages = 64,
    holePages = 0,
    tailPages = 0,
    sparsePages = 0,
    zeroPages = 0,
  } = options;
  const binary = await compilePatternChild();
  const args = [pattern, dataPages, holePages, tailPages, sparsePages, zeroPages].map(String);
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await firstLine(child);
  const layout = JSON.parse(line) as { pid: number; base: string; sparse: string; zero: string };
  const base = BigInt(`0x${layout.base}`);
  const page = (n: number) => BigInt(n * PAGE_SIZE);
  let exited: Promise<void> | undefined;
  return {
    pid: layout.pid,
    pattern,
    base,
    data: { address: base, length: dataPages * PAGE_SIZE },
    hole: { address: base + page(dataPages), length: holePages * PAGE_SIZE },
    tail: { address: base + page(dataPages + holePages), length: tailPages * PAGE_SIZE },
    sparse: { address: BigInt(`0x${layout.sparse}`), length: sparsePages * PAGE_SIZE },
    zero: { address: BigInt(`0x${layout.zero}`), length: zeroPages * PAGE_SIZE },
    kill() {
      exited ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
      return exited;
    },
  };
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end >= 0) {
        cleanup();
        resolve(text.slice(0, end));
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`pattern-child exited (${signal ?? code}) before printing its layout`));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Seconds one C++ memcpy of `src` into `dest` takes: the ceiling the benchmark compares the readers with. */
export function memcpyBench(dest: ByteArray, src: ByteArray): number {
  if (dest.byteLength < src.byteLength) throw new RangeError('memcpyBench: dest is smaller than src');
  return binding().memcpyBench(dest, src);
}
