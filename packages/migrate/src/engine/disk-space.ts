/**
 * Whether the destination can hold what a move will write there, checked before anything is frozen: the agent
 * reports its free disk (`prepare`), the source estimates what it will send. A full disk half-way through the
 * images would fail the move anyway, later and with the container frozen.
 */
import { readFile } from 'node:fs/promises';
import { FerryError, containerTasks } from '@ferry/core';
import { snapshotDir } from '../transfer';

/** CRIU's images besides the pages (core, mm, files...), logs, and the files ferry writes itself. */
export const DISK_SLACK_BYTES = 16 << 20;

export interface SendEstimate {
  bundleBytes: number;
  memoryBytes: number;
}

/** Anonymous memory of the container's tasks (what a dump writes as pages), from /proc/PID/smaps_rollup. */
export async function anonymousMemoryBytes(initPid: number): Promise<number> {
  let bytes = 0;
  for (const { pid } of await containerTasks(initPid)) {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    const kib = /^Anonymous:\s+(\d+) kB/m.exec(rollup)?.[1];
    if (kib) bytes += Number(kib) * 1024;
  }
  return bytes;
}

/** Bytes of the regular files below `dir` (the bundle, as packDir would send it). */
export async function treeBytes(dir: string): Promise<number> {
  const snapshot = await snapshotDir(dir);
  return snapshot.entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0);
}

/**
 * Needed on the destination: the bundle (unless it is on shared storage), the memory when it lands on disk (not for
 * post-copy, whose pages go straight into the restored process), and DISK_SLACK_BYTES.
 */
export function neededBytes(estimate: SendEstimate, options: { pagesOnDisk: boolean }): number {
  return estimate.bundleBytes + (options.pagesOnDisk ? estimate.memoryBytes : 0) + DISK_SLACK_BYTES;
}

export function checkDiskSpace(freeBytes: number, needed: number, destination: string, where: string): void {
  if (freeBytes >= needed) return;
  const mib = (n: number) => `${Math.ceil(n / (1 << 20))} MiB`;
  throw new FerryError('ERR_PRECHECK_DISK_SPACE', `${destination} has ${mib(freeBytes)} free in ${where}; this move needs about ${mib(needed)}`, {
    hint: `Free space on ${destination} (or give its ferry state directory a larger disk); nothing was frozen, the container keeps running here.`,
    details: { freeBytes, neededBytes: needed, dir: where },
  });
}
