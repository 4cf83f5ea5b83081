/**
 * Replication to a standby and failover:
 *   ferry replicate CT --to STANDBY --every 5m [--rounds N]   long-running (systemd: docs/systemd/)
 *   ferry replicas                                           jobs from this host, and replicas stored here
 *   ferry failover CT                                        on the standby: restore the latest good copy
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { FerryError, assertContainerName, isFerryError, parseCgroupLayout, printable, readFileNoFollow } from '@ferry/core';
import { ReplicaStore, ensureFreeCgroupsPath, replicateOnce, resolveDestination, writeReplicationStatus, type ReplicationStatus } from '@ferry/migrate';
import { runtimeRegistry, stateDir } from '../host-context';
import { migrationDeps } from '../migration-deps';
import { formatBytes } from '../render-events';
import { withInterrupt } from './interrupt';
import { parseDuration } from '../move-limits';

const statusDir = () => join(stateDir(), 'replication');
const store = () => new ReplicaStore(join(stateDir(), 'replicas'));

export function parseEvery(text: string): number {
  const value = parseDuration(text, '--every');
  if (value < 1000) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--every ${text} is under a second`, { hint: 'Replicate at most once a second.' });
  return value;
}

const age = (iso: string) => `${Math.round((Date.now() - Date.parse(iso)) / 1000)} s`;

export interface ReplicateArgs {
  container: string;
  to: string;
  every: string;
  rounds?: number;
  json: boolean;
  'hosts-file'?: string[];
  'accept-new-host-key': boolean;
}

export const replicateCommand: CommandModule<object, ReplicateArgs> = {
  command: 'replicate <container>',
  describe: 'Keep a recent checkpoint of a running container on a standby host (runs until stopped)',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true })
      .option('to', { type: 'string', demandOption: true, describe: 'The standby host' })
      .option('every', { type: 'string', default: '5m', describe: 'Time between rounds (30s, 5m, 1h)' })
      .option('rounds', { type: 'number', describe: 'Stop after this many rounds (default: run until SIGINT/SIGTERM)' })
      .option('hosts-file', { type: 'string', array: true })
      .option('accept-new-host-key', { type: 'boolean', default: false })
      .option('json', { type: 'boolean', default: false })
      .check((a) => {
        if (a.rounds !== undefined && (!Number.isInteger(a.rounds) || a.rounds < 1)) throw new Error('--rounds must be a whole number >= 1');
        return true;
      }),
  handler: async (args) => {
    const everyMs = parseEvery(args.every);
    const destination = resolveDestination(args.to, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
    const deps = migrationDeps(args);
    // A container that is not here is an error now, not a round that fails every --every until someone notices.
    await deps.findContainer(args.container);
    let lastError: unknown;
    const status: ReplicationStatus = { container: args.container, destination: args.to, everyMs, rounds: 0, failures: 0, pid: process.pid, updatedAt: new Date().toISOString() };
    const say = (line: string, json: Record<string, unknown>) => process.stdout.write(args.json ? `${JSON.stringify(json)}\n` : `${line}\n`);
    await withInterrupt(async (signal) => {
      for (let n = 1; !signal.aborted; n++) {
        try {
          const round = await replicateOnce({ container: args.container, destination, signal }, deps);
          status.rounds++;
          status.lastGood = round;
          say(`round ${n}: ${round.kind} copy on ${round.destination}, frozen ${round.frozenMs} ms, ${formatBytes(round.bytes)}, ${round.totalMs} ms`, { event: 'round', round });
        } catch (err) {
          status.failures++;
          status.lastError = { at: new Date().toISOString(), message: (err as Error).message, code: isFerryError(err) ? err.code : undefined };
          say(`round ${n} failed: ${(err as Error).message} (the previous copy stays)`, { event: 'round-failed', error: status.lastError });
          lastError = err;
          // Stop on what another round cannot fix: the container is gone, or (first round) the standby cannot be used.
          if (isFerryError(err, 'ERR_ABORTED') || isFerryError(err, 'ERR_RUNTIME_NOT_FOUND') || (status.rounds === 0 && isConfigProblem(err))) break;
        }
        const done = args.rounds !== undefined && n >= args.rounds;
        status.nextDueAt = done ? undefined : new Date(Date.now() + everyMs).toISOString();
        status.updatedAt = new Date().toISOString();
        writeReplicationStatus(statusDir(), status);
        if (done) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, everyMs);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    });
    if (status.rounds === 0) {
      // The failure's own code (an unreachable standby is ERR_TRANSPORT_*): nothing was rolled back, nothing failed to be.
      const code = isFerryError(lastError) ? lastError.code : 'ERR_ABORTED';
      throw new FerryError(code, `no replica of ${args.container} was made: ${status.lastError?.message ?? 'stopped before the first round'}`, {
        hint: `The container keeps running on this host. ${isFerryError(lastError) && lastError.hint ? lastError.hint : 'Fix the cause and start replication again.'}`,
        cause: lastError,
      });
    }
  },
};

export const replicasCommand: CommandModule<object, { json: boolean; 'hosts-file'?: string[] }> = {
  command: 'replicas',
  describe: 'Replication jobs running from this host, and the replicas stored here (with their age)',
  builder: (y) =>
    y
      .option('hosts-file', { type: 'string', array: true, describe: 'Hosts files, to show where each standby is' })
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const jobs = existsSync(statusDir()) ? readdirSync(statusDir()).filter((f) => f.endsWith('.json')).map((f) => readStatus(join(statusDir(), f))) : [];
    const where = (name: string) => {
      try {
        const d = resolveDestination(name, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
        return d.address === name ? '' : ` (${d.address}:${d.port})`;
      } catch {
        return '';
      }
    };
    const stored = await store().list();
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ jobs, replicas: stored }, null, 2)}\n`);
      return;
    }
    process.stdout.write('replication from this host:\n');
    if (jobs.length === 0) process.stdout.write('  none\n');
    for (const j of jobs) {
      const alive = existsSync(`/proc/${j.pid}`) ? 'running' : 'stopped';
      const last = j.lastGood ? `last good copy ${age(j.lastGood.takenAt)} old (frozen ${j.lastGood.frozenMs} ms)` : 'no good copy yet';
      process.stdout.write(`  ${j.container} -> ${printable(j.destination)}${where(j.destination)}: ${alive}, ${j.rounds} rounds, ${j.failures} failed, ${last}${j.lastError ? `; last error: ${j.lastError.message}` : ''}\n`);
    }
    process.stdout.write('replicas stored on this host:\n');
    if (stored.length === 0) process.stdout.write('  none\n');
    for (const r of stored) {
      process.stdout.write(`  ${printable(r.meta.container)} from ${printable(r.meta.sourceHost)}: taken ${r.meta.takenAt} (${age(r.meta.takenAt)} old), ${r.meta.kind}, ${formatBytes(r.diskBytes)}\n`);
    }
  },
};

export const failoverCommand: CommandModule<object, { container: string; json: boolean }> = {
  command: 'failover <container>',
  describe: 'On a standby: start the latest good replica of a container whose primary is gone',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    assertContainerName(args.container);
    const replica = store().current(args.container);
    if (!replica) {
      throw new FerryError('ERR_IMAGE_NOT_FOUND', `no replica of ${args.container} on this host`, { hint: 'Run `ferry replicas` to see what this host holds.' });
    }
    const adapter = runtimeRegistry().get(replica.meta.runtime);
    const layout = parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const roots = [...new Set(Object.values(layout.v1Controllers)), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])];
    ensureFreeCgroupsPath(join(replica.dir, 'bundle'), roots, replica.meta.roundId.slice(0, 8));
    // CRIU's work directory (logs): removed once the copy runs; a failed failover's stays for its logs, and
    // `ferry gc` removes it after the retention time.
    const workDir = mkdtempSync(join(stateDir(), 'failover-'));
    const result = await withInterrupt((signal) =>
      adapter.restore({
        imagesDir: join(replica.dir, 'images'),
        workDir,
        bundle: join(replica.dir, 'bundle'),
        name: args.container,
        fileLocks: true,
        signal,
      }),
    );
    rmSync(workDir, { recursive: true, force: true });
    const line = `failed over ${args.container}: restored the copy taken ${replica.meta.takenAt} (${age(replica.meta.takenAt)} old) in ${result.restoreMs} ms, pid ${result.container.pid ?? '?'}`;
    process.stdout.write(args.json ? `${JSON.stringify({ event: 'failover', container: result.container, replica: replica.meta, restoreMs: result.restoreMs })}\n` : `${line}\n`);
  },
};

/** A replication status file (written by `ferry replicate`); ERR_STATE_CORRUPT when it cannot be read. */
function readStatus(path: string): ReplicationStatus {
  const corrupt = (why: string) =>
    new FerryError('ERR_STATE_CORRUPT', `${path} cannot be read: ${why}`, { hint: 'Remove it; the replication job writes it again at its next round.', details: { path } });
  let status: ReplicationStatus;
  try {
    status = JSON.parse(readFileNoFollow(path) ?? 'null') as ReplicationStatus;
  } catch (err) {
    throw err instanceof FerryError ? err : corrupt((err as Error).message);
  }
  if (typeof status !== 'object' || status === null || typeof status.container !== 'string' || typeof status.destination !== 'string' || typeof status.rounds !== 'number') {
    throw corrupt('not a replication status');
  }
  return status;
}

/** Failures of a first round that more rounds will not fix: the standby's name, keys or ferry. */
function isConfigProblem(err: unknown): boolean {
  return isFerryError(err) && /^ERR_(TRANSPORT_(UNKNOWN_HOST|HOST_KEY_|AUTH_FAILED|CONNECT_FAILED)|PRECHECK_|AGENT_MISSING)/.test(err.code);
}
