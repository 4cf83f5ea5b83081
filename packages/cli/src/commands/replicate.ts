/**
 * Replication to a standby and failover:
 *   ferry replicate CT --to STANDBY --every 5m [--rounds N]   long-running (systemd: docs/systemd/)
 *   ferry replicas                                           jobs from this host, and replicas stored here
 *   ferry failover CT                                        on the standby: restore the latest good copy
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { FerryError, isFerryError, parseCgroupLayout } from '@ferry/core';
import { ReplicaStore, ensureFreeCgroupsPath, replicateOnce, resolveDestination, writeReplicationStatus, type ReplicationStatus } from '@ferry/migrate';
import { runtimeRegistry, stateDir } from '../host-context';
import { migrationDeps } from '../migration-deps';
import { formatBytes } from '../render-events';
import { withInterrupt } from './interrupt';

const statusDir = () => join(stateDir(), 'replication');
const store = () => new ReplicaStore(join(stateDir(), 'replicas'));

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${text}" is not a duration`, { hint: 'Use e.g. 30s, 5m or 1h.' });
  const value = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
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
      .option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const everyMs = parseDuration(args.every);
    const destination = resolveDestination(args.to, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
    const deps = migrationDeps(args);
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
          if (isFerryError(err, 'ERR_ABORTED')) break;
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
      throw new FerryError('ERR_ROLLBACK_FAILED', `no replica of ${args.container} was made (${status.lastError?.message ?? 'stopped'})`, {
        hint: 'The container keeps running; fix the cause (see the error above) and start replication again.',
      });
    }
  },
};

export const replicasCommand: CommandModule<object, { json: boolean }> = {
  command: 'replicas',
  describe: 'Replication jobs running from this host, and the replicas stored here (with their age)',
  builder: (y) => y.option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const jobs = existsSync(statusDir())
      ? readdirSync(statusDir())
          .filter((f) => f.endsWith('.json'))
          .map((f) => JSON.parse(readFileSync(join(statusDir(), f), 'utf8')) as ReplicationStatus)
      : [];
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
      process.stdout.write(`  ${j.container} -> ${j.destination}: ${alive}, ${j.rounds} rounds, ${j.failures} failed, ${last}${j.lastError ? `; last error: ${j.lastError.message}` : ''}\n`);
    }
    process.stdout.write('replicas stored on this host:\n');
    if (stored.length === 0) process.stdout.write('  none\n');
    for (const r of stored) {
      process.stdout.write(`  ${r.meta.container} from ${r.meta.sourceHost}: taken ${r.meta.takenAt} (${age(r.meta.takenAt)} old), ${r.meta.kind}, ${formatBytes(r.diskBytes)}\n`);
    }
  },
};

export const failoverCommand: CommandModule<object, { container: string; json: boolean }> = {
  command: 'failover <container>',
  describe: 'On a standby: start the latest good replica of a container whose primary is gone',
  builder: (y) => y.positional('container', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: async (args) => {
    const replica = store().current(args.container);
    if (!replica) {
      throw new FerryError('ERR_IMAGE_NOT_FOUND', `no replica of ${args.container} on this host`, { hint: 'Run `ferry replicas` to see what this host holds.' });
    }
    const adapter = runtimeRegistry().get(replica.meta.runtime);
    const layout = parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
    const roots = [...new Set(Object.values(layout.v1Controllers)), ...(layout.v2Mountpoint ? [layout.v2Mountpoint] : [])];
    ensureFreeCgroupsPath(join(replica.dir, 'bundle'), roots, replica.meta.roundId.slice(0, 8));
    const result = await withInterrupt((signal) =>
      adapter.restore({
        imagesDir: join(replica.dir, 'images'),
        workDir: mkdtempSync(join(stateDir(), 'failover-')),
        bundle: join(replica.dir, 'bundle'),
        name: args.container,
        fileLocks: true,
        signal,
      }),
    );
    const line = `failed over ${args.container}: restored the copy taken ${replica.meta.takenAt} (${age(replica.meta.takenAt)} old) in ${result.restoreMs} ms, pid ${result.container.pid ?? '?'}`;
    process.stdout.write(args.json ? `${JSON.stringify({ event: 'failover', container: result.container, replica: replica.meta, restoreMs: result.restoreMs })}\n` : `${line}\n`);
  },
};
