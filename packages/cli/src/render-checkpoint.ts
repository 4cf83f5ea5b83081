/**
 * What `ferry checkpoint` and `ferry restore` print: a short report with the timings and sizes for a human, one JSON
 * object for scripts, and a one-line progress note on a TTY while the runtime works. Pure functions over the results;
 * the commands gather the facts.
 */
import type { CheckpointStats, ContainerInfo, ContainerRef, DumpStats, RestoreStats } from '@ferry/core';
import { formatBytes } from './render-events';

export interface CheckpointSummary {
  container: ContainerInfo;
  imagesDir: string;
  leaveRunning: boolean;
  stats: CheckpointStats;
  /** Where the checkpoint went and how to bring it back, when not the image directory (an exported archive). */
  into?: string;
  restoreCommand?: string;
}

export interface RestoreSummary {
  container: ContainerInfo;
  imagesDir: string;
  /** Wall time of the runtime's restore (`runc restore`, CRIU inside). */
  restoreMs: number;
  /** Bytes of the image directory restored from. */
  imageBytes: number;
  /** CRIU's own restore statistics (stats-restore), when CRIU wrote them for this restore. */
  criu?: RestoreStats;
  /** The statistics CRIU recorded when the images were dumped (stats-dump), when present. */
  checkpoint?: Pick<DumpStats, 'frozenMs' | 'memdumpMs' | 'memwriteMs' | 'pagesWritten'>;
}

/** Milliseconds for people: one decimal below 10 ms, whole numbers above; '?' when unknown. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '? ms';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

const refText = (ref: ContainerRef) => `${ref.runtime}:${ref.id}`;

export function renderCheckpoint(s: CheckpointSummary): string {
  const st = s.stats;
  const memory = [
    st.memdumpMs !== undefined ? `memory dump ${formatMs(st.memdumpMs)}` : undefined,
    st.memwriteMs !== undefined ? `memory write ${formatMs(st.memwriteMs)}` : undefined,
    st.pagesWritten !== undefined ? `${st.pagesWritten} pages written` : undefined,
  ].filter(Boolean);
  const lines = [
    `checkpointed ${refText(s.container.ref)} into ${s.into ?? s.imagesDir}`,
    `  frozen        ${formatMs(st.frozenMs)}`,
    `  dump time     ${formatMs(st.totalMs)}${memory.length ? ` (${memory.join(', ')})` : ''}`,
    `  image size    ${formatBytes(st.imageBytes)}`,
    s.leaveRunning
      ? '  the container keeps running'
      : `  the container was stopped; bring it back with \`${s.restoreCommand ?? `ferry restore ${s.imagesDir}`}\``,
  ];
  return `${lines.join('\n')}\n`;
}

export function checkpointJson(s: CheckpointSummary): string {
  return `${JSON.stringify({
    event: 'checkpoint',
    container: s.container.ref,
    state: s.container.state,
    imagesDir: s.imagesDir,
    leaveRunning: s.leaveRunning,
    stats: s.stats,
  })}\n`;
}

export function renderRestore(s: RestoreSummary): string {
  const c = s.criu;
  const inside = c
    ? [`CRIU ${formatMs(c.restoreMs)}`, `forking ${formatMs(c.forkingMs)}`, ...(c.pagesRestored !== undefined ? [`${c.pagesRestored} pages restored`] : [])]
    : [];
  const lines = [
    `restored ${refText(s.container.ref)} (pid ${s.container.pid ?? '?'}) from ${s.imagesDir}`,
    `  restore time  ${formatMs(s.restoreMs)}${inside.length ? ` (${inside.join(', ')})` : ''}`,
    `  image size    ${formatBytes(s.imageBytes)}`,
  ];
  const k = s.checkpoint;
  if (k) {
    const dump = [`memory dump ${formatMs(k.memdumpMs)}`, `memory write ${formatMs(k.memwriteMs)}`, `${k.pagesWritten} pages`];
    lines.push(`  checkpoint    frozen ${formatMs(k.frozenMs)} (${dump.join(', ')})`);
  }
  return `${lines.join('\n')}\n`;
}

export function restoreJson(s: RestoreSummary): string {
  const stats: Record<string, number | undefined> = {
    restoreMs: s.restoreMs,
    imageBytes: s.imageBytes,
    criuRestoreMs: s.criu?.restoreMs,
    forkingMs: s.criu?.forkingMs,
    pagesRestored: s.criu?.pagesRestored,
  };
  return `${JSON.stringify({
    event: 'restore',
    container: s.container,
    imagesDir: s.imagesDir,
    // Kept at the top level as before; the same number is stats.restoreMs.
    restoreMs: s.restoreMs,
    stats,
    ...(s.checkpoint ? { checkpoint: s.checkpoint } : {}),
  })}\n`;
}

/**
 * "checkpointing runc:web into DIR ... done" on a TTY (stderr), nothing otherwise: a single runtime call has no
 * finer progress to show, but a human should see what ferry is waiting for.
 */
export function createProgress(options: { enabled: boolean; write: (s: string) => void }): {
  start(text: string): void;
  end(ok: boolean): void;
} {
  let open = false;
  let started = 0;
  return {
    start(text) {
      if (!options.enabled) return;
      open = true;
      started = Date.now();
      options.write(`${text} ...`);
    },
    end(ok) {
      if (!open) return;
      open = false;
      options.write(ok ? ` done (${formatMs(Date.now() - started)})\n` : ' failed\n');
    },
  };
}
