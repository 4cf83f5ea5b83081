/**
 * ferry drain: move every running container off this host (before a kernel upgrade, say), and bring them back.
 *
 *   ferry drain --to h2,h3 [--concurrency 2] [--dry-run]      on the host to drain
 *   ferry drain HOST --to h2,h3                               from elsewhere: runs the drain on HOST over SSH
 *   ferry drain --return                                      on the drained host: each container comes back
 */
import { randomUUID } from 'node:crypto';
import { homedir, hostname } from 'node:os';
import type { CommandModule } from 'yargs';
import { FerryError } from '@ferry/core';
import { boundedAll, checkResolvable, parseFaults, planDrain, resolveDestination, runFerryRemote, type RequestedStrategy } from '@ferry/migrate';
import { recoverInterrupted, runGuarded } from '../guarded-run';
import { drainRecordPath, loadDrains, returnable, saveDrains, type DrainEntry } from '../drain-record';
import { runtimeRegistry, stateDir } from '../host-context';
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
    // Every destination is resolved before the plan is shown: a typo is an error, not a plan (nor half a drain).
    for (const name of destinations) await checkResolvable(resolveDestination(name, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined }));
    const registry = runtimeRegistry();
    const containers = (await Promise.all(registry.adapters.map((a) => a.list().catch(() => [])))).flat();
    const plan = planDrain(containers, destinations);
    out(`drain plan (${plan.moves.length} to move, ${args.concurrency} at a time):`, { event: 'plan', ...plan });
    for (const m of plan.moves) out(`  ${m.runtime}:${m.container} -> ${m.destination}`);
    for (const s of plan.skipped) out(`  ${s.runtime}:${s.container} stays (${s.reason})`);
    if (args['dry-run']) return;

    const deps = migrationDeps(args);
    await recoverInterrupted(deps, (message) => out(`  ${message}`, { event: 'recovered', message }));
    // Recorded before the first move and after each one: whatever stops this drain, --return knows what left.
    const path = drainRecordPath(stateDir());
    const history = loadDrains(path);
    const entry: DrainEntry = {
      id: randomUUID(),
      drainedAt: new Date().toISOString(),
      as: args.as ?? hostname(),
      ...(args['hosts-file'] ? { hostsFiles: args['hosts-file'] } : {}),
      moves: plan.moves.map((m) => ({ ...m, status: 'pending' as const })),
    };
    history.drains.push(entry);
    saveDrains(path, history);
    const settle = (index: number, error?: unknown) => {
      entry.moves[index] = error === undefined ? { ...entry.moves[index]!, status: 'moved' } : { ...entry.moves[index]!, status: 'failed', error: (error as Error).message };
      saveDrains(path, history);
    };
    // Each move runs in its own guardian; a signal reaches every one of them (runGuarded forwards it).
    const faults = parseFaults(process.env.FERRY_FAULT);
    const results = await boundedAll(plan.moves, args.concurrency, async (move) => {
      const index = plan.moves.indexOf(move);
      const destination = resolveDestination(move.destination, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
      let report;
      try {
        report = await runGuarded({
          move: {
            request: { container: `${move.runtime}:${move.container}`, destination, strategy: args.strategy, tcpEstablished: true, fileLocks: true, extUnixSk: false, sharedStorage: false, faults },
            ssh: guardedSsh(args),
          },
          deps,
          onEvent: () => undefined,
          onNotice: (message) => out(`  ${move.container}: ${message}`, { event: 'notice', ...move, message }),
          announce: false,
        });
      } catch (err) {
        settle(index, err);
        throw err;
      }
      settle(index);
      out(`  moved ${move.container} to ${move.destination} (downtime ${report.downtimeMs} ms)`, { event: 'moved', ...move, report });
      return report;
    });
    finish(
      plan.moves.map((m, i) => (results[i]!.ok ? { ...m, ok: true } : { ...m, ok: false, error: (results[i]!.error as Error).message })),
      out,
      'drain',
    );
  },
};

async function drainReturn(args: DrainArgs, out: (line: string, json?: Record<string, unknown>) => void): Promise<void> {
  const path = drainRecordPath(stateDir());
  const history = loadDrains(path);
  if (history.drains.length === 0) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no drain recorded on this host (${path})`, { hint: 'Run `ferry drain --to HOST` first.' });
  }
  const back = returnable(history);
  const unsure = history.drains.flatMap((d) => d.moves.filter((m) => m.status === 'pending'));
  for (const m of unsure) out(`  ${m.runtime}:${m.container}: its drain to ${m.destination} stopped before it finished; check where it runs`, { event: 'unknown', ...m });
  out(`returning ${back.length} container(s) that drains moved away:`, { event: 'plan', moves: back.map((b) => ({ ...b.move, drainedAt: b.entry.drainedAt })) });
  const ssh = sshOptionsFrom(args);
  const results = await boundedAll(back, args.concurrency, async ({ entry, move }) => {
    const files = args['hosts-file'] ?? entry.hostsFiles;
    const destination = resolveDestination(move.destination, { home: homedir(), hostsFiles: files });
    const argv = ['migrate', `${move.runtime}:${move.container}`, '--to', entry.as, '--strategy', args.strategy, ...(files ?? []).flatMap((f) => ['--hosts-file', f]), '--json'];
    const run = await runFerryRemote(destination, argv, ssh);
    if (run.code !== 0) {
      const error = run.stderr.split('\n').map((l) => { try { return JSON.parse(l) as { event?: string; error?: { message: string } }; } catch { return undefined; } }).find((e) => e?.event === 'error');
      throw new FerryError('ERR_DRAIN_INCOMPLETE', `${move.container} did not come back from ${move.destination}: ${error?.error?.message ?? run.stderr.trim().split('\n').at(-1)}`);
    }
    move.status = 'returned';
    saveDrains(path, history);
    out(`  ${move.container} is back from ${move.destination}`, { event: 'returned', ...move });
  });
  const moves = back.map(({ move }, i) => {
    const r = results[i]!;
    return r.ok ? { ...move, ok: true } : { ...move, ok: false, error: (r.error as Error).message };
  });
  finish(moves, out, 'return');
}

async function drainElsewhere(args: DrainArgs): Promise<void> {
  const destination = resolveDestination(args.host!, { home: homedir(), hostsFiles: args['hosts-file'], hostsFilesGiven: args['hosts-file'] !== undefined });
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
