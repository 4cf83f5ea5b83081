import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError, type CheckpointStats } from '@ferry/core';
import { DEFAULT_CONVERGENCE_POLICY } from './convergence-policy';
import { finalDumpReport, processCpuMs, runCriuPreCopy, type CriuPreCopyDeps } from './criu-precopy';

const MiB = 1 << 20;
let outgoing: string;
beforeEach(() => {
  outgoing = mkdtempSync(join(tmpdir(), 'ferry-criu-precopy-'));
});
afterEach(() => rmSync(outgoing, { recursive: true, force: true }));

/** A CRIU and a link whose rounds write `mib[i]` MiB each, sent at 10 MiB/s on a fake clock. */
function scripted(mib: number[], options: { failAt?: number; failSendAt?: number } = {}) {
  let clock = 0;
  const calls: { imagesDir: string; workDir: string; parentImage: string | undefined }[] = [];
  const sent: string[] = [];
  let cpu = 0;
  const deps: CriuPreCopyDeps = {
    now: () => clock,
    cpuMs: () => (cpu += 7),
    async preDump(imagesDir, workDir, parentImage) {
      calls.push({ imagesDir, workDir, parentImage });
      if (options.failAt === calls.length) throw new FerryError('ERR_CRIU_PRE_DUMP_FAILED', 'pre-dump failed');
      const bytes = (mib[calls.length - 1] ?? 0) * MiB;
      clock += 50;
      return { pagesWritten: bytes / 4096, pagesSkippedParent: 100, imageBytes: bytes + 8192, frozenMs: 20, memdumpMs: 12.4, totalMs: 50 } satisfies CheckpointStats;
    },
    async send(part, dir) {
      sent.push(`${part} ${dir}`);
      if (options.failSendAt === sent.length) throw new FerryError('ERR_TRANSPORT_CLOSED', 'link lost');
      const bytes = (mib[sent.length - 1] ?? 0) * MiB;
      clock += (bytes / (10 * MiB)) * 1000;
      return bytes;
    },
  };
  return { deps, calls, sent };
}

test('chains each pre-dump to the previous one and stops when a round fits the frozen target', async () => {
  const { deps, calls, sent } = scripted([64, 12, 2]);
  const result = await runCriuPreCopy(outgoing, deps);
  expect(calls).toEqual([
    { imagesDir: join(outgoing, 'pre', '1'), workDir: join(outgoing, 'pre-work', '1'), parentImage: undefined },
    { imagesDir: join(outgoing, 'pre', '2'), workDir: join(outgoing, 'pre-work', '2'), parentImage: '../1' },
    { imagesDir: join(outgoing, 'pre', '3'), workDir: join(outgoing, 'pre-work', '3'), parentImage: '../2' },
  ]);
  expect(sent).toEqual([1, 2, 3].map((n) => `pre/${n} ${join(outgoing, 'pre', String(n))}`));
  expect(result.outcome).toBe('converged');
  // The final dump lives in OUTGOING/images, next to pre/: its parent is the last round.
  expect(result.parentImage).toBe('../pre/3');
  expect(result.rounds.map((r) => r.pages)).toEqual([16384, 3072, 512]);
  // Round 2 took 50 ms of CRIU and 1.2 s of sending at 10 MiB/s; two CPU readings 7 ms apart.
  expect(result.rounds[1]).toEqual({ round: 2, pages: 3072, bytes: 12 * MiB, scannedPages: 3172, zeroPages: 0, ms: 1250, readMs: 12, cpuMs: 7, frozenMs: 20 });
  expect(statSync(join(outgoing, 'pre')).mode & 0o777).toBe(0o700);
});

test('reports each round with what comes next', async () => {
  const { deps } = scripted([64, 1]);
  const seen: string[] = [];
  deps.onRound = (r, next) => seen.push(`${r.round}:${r.pages}:${next.action}`);
  const result = await runCriuPreCopy(outgoing, deps);
  expect(seen).toEqual(['1:16384:round', '2:256:freeze']);
  expect(result).toMatchObject({ outcome: 'converged', parentImage: '../pre/2' });
});

test('stops where the policy gives up (rounds no longer shrink, or the round limit), after the last round sent', async () => {
  // Round 3 (38 MiB) found ~9.4 MiB/s dirtied during round 2, against a 10 MiB/s link: the policy gives up.
  const stuck = scripted([64, 40, 38, 30]);
  await expect(runCriuPreCopy(outgoing, stuck.deps)).resolves.toMatchObject({ outcome: 'dirty-rate-exceeds-link', parentImage: '../pre/3' });
  expect(stuck.sent).toHaveLength(3);

  const limited = scripted([64, 40, 30, 20]);
  const policy = { ...DEFAULT_CONVERGENCE_POLICY, maxRounds: 2, shrinkRatio: 1, targetFrozenBytes: 0, targetFrozenSendMs: 0 };
  await expect(runCriuPreCopy(outgoing, limited.deps, policy)).resolves.toMatchObject({ outcome: 'round-limit', rounds: [{ round: 1 }, { round: 2 }] });
  expect(limited.calls).toHaveLength(2);
});

test('a failed pre-dump or send ends the rounds with that error and sends nothing more', async () => {
  const dump = scripted([64, 12, 2], { failAt: 2 });
  await expect(runCriuPreCopy(outgoing, dump.deps)).rejects.toMatchObject({ code: 'ERR_CRIU_PRE_DUMP_FAILED' });
  expect(dump.sent).toHaveLength(1);

  const send = scripted([64, 12, 2], { failSendAt: 1 });
  await expect(runCriuPreCopy(outgoing, send.deps)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  expect(send.calls).toHaveLength(1);
});

test('stops before the next round once aborted', async () => {
  const { deps, calls } = scripted([64, 12, 2]);
  const controller = new AbortController();
  deps.signal = controller.signal;
  deps.onRound = () => controller.abort();
  await expect(runCriuPreCopy(outgoing, deps)).rejects.toMatchObject({ code: 'ERR_ABORTED', message: 'pre-copy interrupted after 1 round(s)' });
  expect(calls).toHaveLength(1);
});

test('counts pages from the image size when CRIU gave no stats', async () => {
  const { deps } = scripted([64, 1]);
  const preDump = deps.preDump;
  deps.preDump = async (...args) => {
    const { pagesWritten: _pages, ...rest } = await preDump(...args);
    return rest;
  };
  const result = await runCriuPreCopy(outgoing, deps);
  expect(result.rounds[0]!.pages).toBe(16384 + 2);
});

test('the final dump: pages it skipped as unchanged are the ones the destination already held', () => {
  const report = finalDumpReport({ pagesWritten: 40, pagesSkippedParent: 16000, imageBytes: 200_000, memdumpMs: 3.6, totalMs: 900 }, 41.7);
  expect(report).toEqual({
    finalPages: 16040,
    finalPagesHeld: 16000,
    finalRound: { pages: 40, bytes: 200_000, readMs: 4, cpuMs: 42, latePages: 0, overlappedDump: false },
  });
});

test('CPU use counts this process and its reaped children, and only grows', () => {
  const first = processCpuMs();
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += i;
  expect(x).toBeGreaterThan(0);
  expect(processCpuMs()).toBeGreaterThanOrEqual(first);
  expect(first).toBeGreaterThan(0);
});
