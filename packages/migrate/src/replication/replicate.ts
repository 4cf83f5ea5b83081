/**
 * Replication to a standby: every round checkpoints the running container (frozen only while it is dumped) and
 * stores a complete copy in the standby's replica store, where `ferry failover` restores it if the primary is gone.
 *
 * Contract: replicateOnce() leaves the container running whatever happens (the thaw is registered before the
 * freeze); a failed round leaves the standby's previous copy untouched (the new one lands in an incoming directory
 * that only a complete round turns current).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, createImageDir, type EventSink } from '@ferry/core';
import type { UploadResult } from '../protocol/agent-messages';
import { greet } from '../engine/greet';
import { checkHostPair } from '../engine/plan-migration';
import type { MigrateDeps } from '../engine/migrate-deps';
import { anonymousMemoryBytes, checkDiskSpace, neededBytes, treeBytes } from '../engine/disk-space';
import { Reverter } from '../engine/reverter';
import type { Destination } from '../hosts/resolve-host';
import { packDir } from '../transfer';
import type { ReplicaMeta } from './replica-store';

export interface ReplicaRound {
  roundId: string;
  container: string;
  destination: string;
  takenAt: string;
  frozenMs: number;
  bytes: number;
  totalMs: number;
  kind: 'full' | 'incremental';
}

export async function replicateOnce(
  request: { container: string; destination: Destination; onEvent?: EventSink; signal?: AbortSignal },
  deps: MigrateDeps,
): Promise<ReplicaRound> {
  const started = Date.now();
  const roundId = randomUUID();
  const undo = new Reverter();
  const { adapter, container } = await deps.findContainer(request.container);
  if (container.state !== 'running') {
    throw new FerryError('ERR_RUNTIME_NOT_RUNNING', `container ${request.container} is ${container.state}, not running`, { hint: 'Replication copies running containers.' });
  }
  await adapter.preflight(container);
  const name = container.ref.id;
  const outgoing = join(deps.stateDir, 'outgoing', roundId);
  try {
    const connection = await deps.connectAgent(request.destination, request.signal);
    undo.add('close the connection', () => connection.close());
    const peer = connection.peer;
    const { local, remote } = await greet(peer, deps);
    checkHostPair(local, remote, adapter, request.destination.name);
    const prepared = await peer.request<{ dir: string; freeDiskBytes: number }>('replica-prepare', { migrationId: roundId, runtime: adapter.name, name });
    const dropRound = undo.add('drop the incomplete round', () => peer.request('abort', { migrationId: roundId }).then(() => undefined, () => undefined));
    const estimate = { bundleBytes: container.bundle ? await treeBytes(container.bundle) : 0, memoryBytes: container.pid ? await anonymousMemoryBytes(container.pid).catch(() => 0) : 0 };
    checkDiskSpace(prepared.freeDiskBytes, neededBytes(estimate, { pagesOnDisk: true }), request.destination.name, prepared.dir);
    let bytes = 0;
    if (container.bundle) {
      const bundle = container.bundle;
      bytes += (await peer.request<UploadResult>('upload', { migrationId: roundId, part: 'bundle' }, (sink) => packDir(bundle, sink).then(() => undefined))).bytes;
    }
    const imagesDir = createImageDir(join(outgoing, 'images'));
    mkdirSync(join(outgoing, 'work'), { recursive: true, mode: 0o700 });
    await adapter.pause(name);
    const frozenAt = Date.now();
    const thaw = undo.add('thaw the container', () => adapter.resume(name));
    await adapter.checkpoint(container.ref, { imagesDir, workDir: join(outgoing, 'work'), leaveRunning: true, fileLocks: true, signal: request.signal });
    await adapter.resume(name);
    thaw.release();
    const frozenMs = Date.now() - frozenAt;
    bytes += (await peer.request<UploadResult>('upload', { migrationId: roundId, part: 'images' }, (sink) => packDir(imagesDir, sink).then(() => undefined))).bytes;
    const takenAt = new Date(frozenAt).toISOString();
    const kind = 'full' as const; // incremental rounds need soft-dirty memory tracking (CRIU pre-dump chains)
    const meta: ReplicaMeta = { container: name, runtime: adapter.name, roundId, sourceHost: local.hostname, takenAt, frozenMs, bytes, kind };
    await peer.request('replica-commit', { migrationId: roundId, meta });
    dropRound.release();
    await undo.fail(); // closes the connection
    return { roundId, container: name, destination: request.destination.name, takenAt, frozenMs, bytes, totalMs: Date.now() - started, kind };
  } catch (err) {
    await undo.fail();
    throw err;
  } finally {
    rmSync(outgoing, { recursive: true, force: true });
  }
}

export interface ReplicationStatus {
  container: string;
  destination: string;
  everyMs: number;
  rounds: number;
  failures: number;
  lastGood?: ReplicaRound;
  lastError?: { at: string; message: string; code?: string };
  nextDueAt?: string;
  pid: number;
  updatedAt: string;
}

export function writeReplicationStatus(dir: string, status: ReplicationStatus): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${status.container}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(status, null, 2), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
