/**
 * What `ferry start --from` and `ferry snapshot ...` print: short reports for people, one JSON object for scripts.
 * Pure functions over the results; the commands gather the facts.
 */
import type { RevertResult, SnapshotInfo, SnapshotListing, StartedContainer, TakenSnapshot } from '@ferry/core';
import { formatMs } from './render-checkpoint';
import { formatBytes } from './render-events';

// ------------------------------------------------------------------------------------------------ start --from

export interface StartSummary {
  imagesDir: string;
  imageBytes: number;
  started: StartedContainer[];
  /** Wall time of the whole command's work (all copies). */
  totalMs: number;
}

function netnsText(s: StartedContainer): string {
  const path = s.container.netns?.path;
  switch (s.netns.mode) {
    case 'none':
      return '';
    case 'join':
      return `, netns ${path ?? s.netns.recordedPath} (the recorded one)`;
    case 'recreate':
      return `, netns ${path} (re-created: ${s.netns.reason})`;
    case 'own':
      return `, netns ${path} (its own: ${s.netns.reason})`;
  }
}

export function renderStart(s: StartSummary): string {
  const lines = s.started.map((one) => {
    const criu = one.criu ? ` (CRIU ${formatMs(one.criu.restoreMs)})` : '';
    return `started ${one.container.ref.runtime}:${one.container.ref.id} (pid ${one.container.pid ?? '?'}) in ${formatMs(one.restoreMs)}${criu}${netnsText(one)}`;
  });
  lines.push(`  from          ${s.imagesDir} (${formatBytes(s.imageBytes)}, read only: it can start any number of copies)`);
  if (s.started.length > 1) lines.push(`  all ${s.started.length} in    ${formatMs(s.totalMs)}`);
  return `${lines.join('\n')}\n`;
}

export function startJson(s: StartSummary): string {
  return `${JSON.stringify({
    event: 'start',
    imagesDir: s.imagesDir,
    imageBytes: s.imageBytes,
    totalMs: s.totalMs,
    containers: s.started.map((one) => ({
      container: one.container,
      restoreMs: one.restoreMs,
      netns: one.netns,
      ...(one.criu ? { criu: one.criu } : {}),
    })),
  })}\n`;
}

// ------------------------------------------------------------------------------------------------ snapshot

export function renderSnapshotTaken(t: TakenSnapshot): string {
  const r = t.record;
  const kind = r.kind === 'incremental' ? `incremental on ${r.parent}` : `full: ${r.reason}`;
  const pages = r.pagesWritten !== undefined ? `, ${r.pagesWritten} pages written` : '';
  const skipped = r.pagesSkippedParent ? `, ${r.pagesSkippedParent} pages kept in the parent` : '';
  const lines = [
    `snapshot ${r.id} of ${r.runtime}:${r.container} taken (${kind})`,
    `  frozen        ${formatMs(r.frozenMs)}`,
    `  dump time     ${formatMs(r.dumpMs)}${pages}${skipped}`,
    `  image size    ${formatBytes(r.imageBytes)}`,
    `  stored in     ${t.dir}`,
    `  the container ${t.container.state === 'paused' ? 'stays paused' : 'keeps running'}; go back to this state with \`ferry snapshot revert ${r.container} ${r.id}\``,
  ];
  return `${lines.join('\n')}\n`;
}

export function snapshotTakenJson(t: TakenSnapshot): string {
  return `${JSON.stringify({ event: 'snapshot', snapshot: t.record, dir: t.dir, container: t.container })}\n`;
}

/** "2026-11-12 10:15:30" in UTC from an ISO time. */
function utc(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';
}

export function renderSnapshotList(l: SnapshotListing): string {
  if (l.snapshots.length === 0) return `${l.container} has no snapshots (${l.dir}); take one with \`ferry snapshot ${l.container}\`\n`;
  const rows = l.snapshots.map((s: SnapshotInfo) => {
    const r = s.record;
    if (!r) return [s.id, '-', 'incomplete', '-', '-', formatBytes(s.diskBytes)];
    const kind = r.kind === 'incremental' ? `incr(${r.parent?.split('-')[0]})` : 'full';
    return [s.id, utc(r.takenAt), kind, formatMs(r.frozenMs), formatBytes(r.imageBytes), formatBytes(s.diskBytes)];
  });
  const table = [['SNAPSHOT', 'TAKEN (UTC)', 'KIND', 'FROZEN', 'IMAGE', 'DISK'], ...rows];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const right = new Set([3, 4, 5]);
  const lines = table.map((row) => row.map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd());
  const complete = l.snapshots.filter((s) => s.complete).length;
  const incomplete = l.snapshots.length - complete;
  lines.push(
    `total ${formatBytes(l.totalDiskBytes)} on disk in ${complete} snapshot${complete === 1 ? '' : 's'}${incomplete ? ` and ${incomplete} incomplete` : ''} (${l.dir})`,
  );
  const reasons = [...new Set(l.snapshots.flatMap((s) => (s.record?.kind === 'full' ? [s.record.reason] : [])))];
  if (reasons.length === 1 && reasons[0] === 'no memory tracking on this kernel') lines.push('all full: no memory tracking on this kernel');
  return `${lines.join('\n')}\n`;
}

export function snapshotListJson(l: SnapshotListing): string {
  return `${JSON.stringify({
    event: 'snapshots',
    container: l.container,
    dir: l.dir,
    totalDiskBytes: l.totalDiskBytes,
    snapshots: l.snapshots.map((s) => ({ id: s.id, seq: s.seq, dir: s.dir, complete: s.complete, diskBytes: s.diskBytes, ...(s.record ?? {}) })),
  })}\n`;
}

export function renderRevert(r: RevertResult): string {
  const c = r.started.container;
  const criu = r.started.criu ? ` (CRIU ${formatMs(r.started.criu.restoreMs)})` : '';
  const lines = [
    `reverted ${c.ref.runtime}:${c.ref.id} to snapshot ${r.snapshot.id} (taken ${utc(r.snapshot.takenAt)} UTC)`,
    r.stopped ? `  stopped       the running container in ${formatMs(r.stopMs)}` : '  stopped       nothing (the container was not there)',
    `  restore time  ${formatMs(r.started.restoreMs)}${criu}`,
    `  downtime      ${formatMs(r.downtimeMs)} (stop + restore)`,
    `  now running   pid ${c.pid ?? '?'}; the snapshot is kept in ${r.dir}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function revertJson(r: RevertResult): string {
  return `${JSON.stringify({
    event: 'revert',
    snapshot: r.snapshot,
    dir: r.dir,
    container: r.started.container,
    stopped: r.stopped,
    stopMs: r.stopMs,
    restoreMs: r.started.restoreMs,
    downtimeMs: r.downtimeMs,
    netns: r.started.netns,
    ...(r.started.criu ? { criu: r.started.criu } : {}),
  })}\n`;
}

export function renderSnapshotRemoved(container: string, s: SnapshotInfo): string {
  return `removed snapshot ${s.id} of ${container} (${formatBytes(s.diskBytes)} freed)\n`;
}
