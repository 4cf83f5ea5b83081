/**
 * ferry drain: move every running container off this host (before a kernel upgrade, say), and bring them back.
 *
 *   ferry drain --to h2,h3 [--concurrency 2] [--dry-run]      on the host to drain
 *   ferry drain HOST --to h2,h3                               from elsewhere: runs the drain on HOST over SSH
 *   ferry drain --return                                      on the drained host: each container comes back
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { FERRY_STATE_DIR, FerryError } from '@ferry/core';
import { boundedAll, parseFaults, planDrain, resolveDestination, runFerryRemote, type DrainAssignment, type RequestedStrategy } from '@ferry/migrate';
import { recoverInterrupted, runGuarded } from '../guarded-run';
import { runtimeRegistry } from '../host-context';
import { guardedSsh, migrationDeps, sshOptionsFrom } from '../migration-deps';

export interface DrainArgs {
  host?: string;
  to?: string;
  return: boolean;
  concurrency: number;
  'dry-run': boolean;
  strategy: RequestedStrategy;
  as?: string;
  'hosts-file'?: string[];
  'accept-new-host-key': boolean;
  json: boolean;
}

interface DrainRecord {
  drainedAt: string;
  /** How the destinations name this host, for the way back. */
  as: string;
  hostsFiles?: string[];
  moves: (DrainAssignment & { ok: boolean; error?: string })[];
}

const RECORD = join(FERRY_STATE_DIR, 'drain.json');

export const drainCommand: CommandModule<object, DrainArgs> = {
  command: 'drain [host]',
  describe: 'Move every running container off a host (and back with --return)',
  builder: (y) =>
    y
      .positional('host', { type: 'string', describe: 'The host to drain (default: this one; another host is drained over SSH)' })
      .option('to', { type: 'string', describe: 'Destinations, comma-separated: HOST2[,HOST3]' })
      .option('return', { type: 'boolean', default: false, describe: 'Bring back what the last drain of this host moved' })
      .option('concurrency', { type: 'number', default: 2, describe: 'Migrations at a time' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Show the plan only' })
      .option('strategy', { choices: ['auto', 'stop-and-copy', 'pre-copy', 'hash-pre-copy', 'post-copy'] as const, default: 'auto' as const })
      .option('as', { type: 'string', describe: 'The name the destinations use for this host (for --return; default: hostname)' })
      .option('hosts-file', { type: 'string', array: true, describe: 'Hosts files to read (on every host involved)' })
      .option('accept-new-host-key', { type: 'boolean', default: false })
      .option('json', { type: 'boolean', default: false })
      .check((a) => {
        if (!a.return && !a.to) throw new Error('Name the destinations with --to HOST2[,HOST3], or use --return.');
        if (!Number.isInteger(a.concurrency) || a.concurrency < 1) throw new Error('--concurrency must be a whole number >= 1');
        return true;
      }),
  handler: async (args) => {
    const out = (line: string, json?: Record<string, unknown>) =>
      process.stdout.write(args.json ? `${JSON.stringify(json ?? { event: 'message', message: line })}\n` : `${line}\n`);
    if (args.host && args.host !== 'local') return drainElsewhere(args);
    if (args.return) return drainReturn(args, out);
    const destinations = (args.to ?? '').split(',').map((d) => d.trim()).filter(Boolean);
    const registry = runtimeRegistry();
    const containers = (await Promise.all(registry.adapters.map((a) => a.list().catch(() => [])))).flat();
    const plan = planDrain(containers, destinations);
    out(`drain plan (${plan.moves.length} to move, ${args.concurrency} at a time):`, { event: 'plan', ...plan });
    for (const m of plan.moves) out(`  ${m.runtime}:${m.container} -> ${m.destination}`);
    for (const s of plan.skipped) out(`  ${s.runtime}:${s.container} stays (${s.reason})`);
    if (args['dry-run']) return;
    await recoverInterrupted(migrationDeps(args), (message) => out(`  ${message}`, { event: 'recovered', message }));

    // Each move runs in its own guardian; a signal reaches every one of them (runGuarded forwards it).
    const faults = parseFaults(process.env.FERRY_FAULT);
    const results = await boundedAll(plan.moves, args.concurrency, async (move) => {
      const destination = resolveDestination(move.destination, { home: homedir(), hostsFiles: args['hosts-file'] });
      const report = await runGuarded({
        move: {
          request: { container: `${move.runtime}:${move.container}`, destination, strategy: args.strategy, tcpEstablished: true, fileLocks: true, extUnixSk: false, sharedStorage: false, faults },
          ssh: guardedSsh(args),
        },
        onEvent: () => undefined,
        onNotice: (message) => out(`  ${move.container}: ${message}`, { event: 'notice', ...move, message }),
      });
      out(`  moved ${move.container} to ${move.destination} (downtime ${report.downtimeMs} ms)`, { event: 'moved', ...move, report });
      return report;
    });
    const record: DrainRecord = {
      drainedAt: new Date().toISOString(),
      as: args.as ?? hostname(),
      hostsFiles: args['hosts-file'],
      moves: plan.moves.map((m, i) => {
        const r = results[i]!;
        return r.ok ? { ...m, ok: true } : { ...m, ok: false, error: (r.error as Error).message };
      }),
    };
    mkdirSync(FERRY_STATE_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(RECORD, JSON.stringify(record, null, 2), { mode: 0o600 });
    finish(record.moves, out, 'drain');
  },
};

async function drainReturn(args: DrainArgs, out: (line: string, json?: Record<string, unknown>) => void): Promise<void> {
  let record: DrainRecord;
  try {
    record = JSON.parse(readFileSync(RECORD, 'utf8')) as DrainRecord;
  } catch {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no drain recorded on this host (${RECORD})`, { hint: 'Run `ferry drain --to HOST` first.' });
  }
  const back = record.moves.filter((m) => m.ok);
  out(`returning ${back.length} container(s) drained at ${record.drainedAt} (this host is "${record.as}" for them):`, { event: 'plan', moves: back });
  const hostsFiles = (args['hosts-file'] ?? record.hostsFiles ?? []).flatMap((f) => ['--hosts-file', f]);
  const ssh = sshOptionsFrom(args);
  const results = await boundedAll(back, args.concurrency, async (move) => {
    const destination = resolveDestination(move.destination, { home: homedir(), hostsFiles: args['hosts-file'] ?? record.hostsFiles });
    const run = await runFerryRemote(destination, ['migrate', `${move.runtime}:${move.container}`, '--to', record.as, '--strategy', args.strategy, ...hostsFiles, '--json'], ssh);
    if (run.code !== 0) {
      const error = run.stderr.split('\n').map((l) => { try { return JSON.parse(l) as { event?: string; error?: { message: string } }; } catch { return undefined; } }).find((e) => e?.event === 'error');
      throw new FerryError('ERR_DRAIN_INCOMPLETE', `${move.container} did not come back from ${move.destination}: ${error?.error?.message ?? run.stderr.trim().split('\n').at(-1)}`);
    }
    out(`  ${move.container} is back from ${move.destination}`, { event: 'returned', ...move });
  });
  const moves = back.map((m, i) => {
    const r = results[i]!;
    return r.ok ? { ...m, ok: true } : { ...m, ok: false, error: (r.error as Error).message };
  });
  if (moves.every((m) => m.ok)) writeFileSync(RECORD, JSON.stringify({ ...record, moves: [] }, null, 2));
  finish(moves, out, 'return');
}

async function drainElsewhere(args: DrainArgs): Promise<void> {
  const destination = resolveDestination(args.host!, { home: homedir(), hostsFiles: args['hosts-file'] });
  const argv = ['drain', ...(args.return ? ['--return'] : ['--to', args.to!]), '--concurrency', String(args.concurrency), '--strategy', args.strategy, '--as', args.as ?? args.host!];
  if (args['dry-run']) argv.push('--dry-run');
  if (args.json) argv.push('--json');
  for (const f of args['hosts-file'] ?? []) argv.push('--hosts-file', f);
  const run = await runFerryRemote(destination, argv, sshOptionsFrom(args), (chunk) => process.stderr.write(chunk));
  process.stdout.write(run.stdout);
  if (run.code !== 0) process.exitCode = run.code ?? 1;
}

function finish(moves: { container: string; destination: string; ok: boolean; error?: string }[], out: (line: string, json?: Record<string, unknown>) => void, what: string): void {
  const failed = moves.filter((m) => !m.ok);
  out(`${what}: ${moves.length - failed.length} of ${moves.length} moved`, { event: 'summary', moved: moves.length - failed.length, failed: failed.length, moves });
  if (failed.length > 0) {
    throw new FerryError('ERR_DRAIN_INCOMPLETE', `${failed.length} container(s) did not move: ${failed.map((f) => `${f.container} (${f.error})`).join('; ')}`, {
      hint: 'The ones that did not move still run where they were; fix the cause and run the command again.',
    });
  }
}
