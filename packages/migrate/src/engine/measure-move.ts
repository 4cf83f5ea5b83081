/**
 * The measurements a prediction needs (predict-move.ts), taken while the container runs and nothing is written on
 * the destination: a short transfer the agent counts and drops, and two hash passes over the container's memory
 * (the ones hash pre-copy's rounds make, into a sink that drops them).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import type { AgentPeer } from '../protocol/agent-peer';
import { SentPages, sendRound } from '../precopy/memory-rounds';
import { treeBytes } from './disk-space';
import type { MoveMeasurements } from './predict-move';

/** The probe transfer: long enough for the rate to settle, short enough not to matter. */
export const PROBE_BYTES = 16 << 20;
/** Under --bandwidth, the probe sends at most this long's worth of bytes at the cap. */
export const PROBE_CAPPED_MS = 2000;
/** The time between the starts of the two memory passes: the window in which the second one finds changes. */
export const DIRTY_WINDOW_MS = 1000;

export function probeBytes(bandwidthBytesPerSec?: number): number {
  return bandwidthBytesPerSec ? Math.max(1 << 20, Math.min(PROBE_BYTES, Math.round((bandwidthBytesPerSec * PROBE_CAPPED_MS) / 1000))) : PROBE_BYTES;
}

/** Bytes per second of one transfer to the agent (random bytes: nothing on the way can compress them). */
export async function probeLink(peer: AgentPeer, bytes: number): Promise<number> {
  const block = randomBytes(1 << 20);
  const t0 = performance.now();
  const result = await peer.request<{ bytes: number }>('probe', {}, async (sink) => {
    for (let sent = 0; sent < bytes; sent += block.length) {
      if (!sink.write(block.subarray(0, Math.min(block.length, bytes - sent)))) await new Promise((r) => sink.once('drain', r));
    }
  });
  const ms = Math.max(1, performance.now() - t0);
  return (result.bytes * 1000) / ms;
}

/** Two passes over the container's memory: what a full copy sends, and how fast pages change. */
export async function measureMemory(initPid: number, windowMs = DIRTY_WINDOW_MS): Promise<{ memoryBytes: number; dirtyBytesPerSec: number; windowMs: number }> {
  const sent = new SentPages();
  const drop = () => new Writable({ write: (_chunk, _enc, done) => done() });
  const t1 = performance.now();
  const first = await sendRound(initPid, sent, drop());
  const rest = windowMs - (performance.now() - t1);
  if (rest > 0) await sleep(rest);
  const t2 = performance.now();
  const second = await sendRound(initPid, sent, drop());
  return { memoryBytes: first.bytes, dirtyBytesPerSec: (second.bytes * 1000) / (t2 - t1), windowMs: Math.round(t2 - t1) };
}

export async function measureMove(
  peer: AgentPeer,
  container: { pid?: number },
  trees: readonly string[],
  bandwidthBytesPerSec?: number,
): Promise<MoveMeasurements & { windowMs: number }> {
  const measured = await probeLink(peer, probeBytes(bandwidthBytesPerSec));
  const linkBytesPerSec = bandwidthBytesPerSec ? Math.min(measured, bandwidthBytesPerSec) : measured;
  const memory = container.pid ? await measureMemory(container.pid) : { memoryBytes: 0, dirtyBytesPerSec: 0, windowMs: 0 };
  const filesBytes = (await Promise.all(trees.map((dir) => treeBytes(dir)))).reduce((a, b) => a + b, 0);
  return { linkBytesPerSec, ...memory, filesBytes };
}
