/**
 * The ferry command line: the only code that reads argv and the environment, prints, or exits.
 */
import yargs, { type Argv } from 'yargs';
import { FerryError } from '@ferry/core';
import { agentCommand } from './commands/agent';
import { pageLinkKeeperCommand } from './commands/page-link-keeper';
import { pageRelayCommand } from './commands/page-relay';
import { doctorCommand } from './commands/doctor';
import { gcCommand } from './commands/gc';
import { guardianCommand } from './commands/guardian';
import { recoverCommand } from './commands/recover';
import { drainCommand } from './commands/drain';
import { checkpointCommand } from './commands/checkpoint';
import { cloneCommand } from './commands/clone';
import { migrateCommand } from './commands/migrate';
import { psCommand } from './commands/ps';
import { failoverCommand, replicasCommand, replicateCommand } from './commands/replicate';
import { restoreCommand } from './commands/restore';
import { sessionCommand } from './commands/session';
import { snapshotCommand } from './commands/snapshot';
import { startCommand } from './commands/start';
import { versionCommand } from './commands/version';
import { EXIT, exitCodeFor } from './exit-codes';
import { renderError } from './render-error';

const COMMANDS = [doctorCommand, psCommand, checkpointCommand, restoreCommand, sessionCommand, startCommand, snapshotCommand, migrateCommand, cloneCommand, drainCommand, replicateCommand, replicasCommand, failoverCommand, recoverCommand, gcCommand, agentCommand, guardianCommand, versionCommand, pageRelayCommand, pageLinkKeeperCommand];

/**
 * Options that take a value: a value that starts with one "-" (`--every -5m`, `--to -oProxyCommand=x`) is that
 * option's value, to be checked and refused as such, not a cluster of short flags ("Unknown arguments: 5, m").
 */
const VALUE_OPTIONS = new Set([
  'to', 'every', 'rounds', 'name', 'dir', 'store', 'as', 'hosts-file', 'address', 'concurrency', 'criu', 'state-dir', 'cleanup', 'status', 'bundle',
  'older-than', 'strategy', 'lxcpath', 'from', 'count', 'name-prefix', 'runtime', 'agent-command',
]);

/** `--name` at the end or before another option: yargs would take "" and go on; it is a usage error. */
export function missingValue(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg.startsWith('--') && VALUE_OPTIONS.has(arg.slice(2)) && (next === undefined || next.startsWith('--'))) return `${arg} needs a value`;
  }
  return undefined;
}

export function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg.startsWith('--') && VALUE_OPTIONS.has(arg.slice(2)) && next !== undefined && /^-[^-]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

export function buildParser(rawArgv: string[], scriptName: string): Argv {
  const argv = joinDashValues(rawArgv);
  let parser = yargs(argv)
    .scriptName(scriptName)
    .usage('$0 <command> [options]')
    .strict()
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    // `ferry completion` prints a bash/zsh script that completes commands and options (yargs asks the CLI itself).
    .completion('completion', 'Print a shell completion script (bash, zsh): `ferry completion >> ~/.bashrc`')
    .epilogue('ferry --version shows the versions of ferry, CRIU and the agent protocol.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, err) => {
      // A command's own failure (its handler threw): main() renders it.
      if (err && !message) throw err;
      if (err instanceof FerryError) throw err;
      // Everything else is a usage error, from yargs' validation or a builder's check: exit 2, never a stack trace.
      throw usageError(message ?? err?.message ?? 'bad arguments', argv, scriptName);
    });
  for (const command of COMMANDS) parser = parser.command(command as never);
  // Before the command's own checks: one value per single-valued option (`--to a --to b` is a mistake, not a list),
  // and numbers that are numbers.
  const check = (args: Record<string, unknown>, y: unknown) => {
    const problem = missingValue(argv) ?? valueProblem(args, (y as { getOptions(): ParserOptions }).getOptions());
    if (problem) throw usageError(problem, argv, scriptName);
  };
  return parser.middleware(check as never, true);
}

interface ParserOptions {
  array: string[];
  number: string[];
  key: Record<string, unknown>;
}

function valueProblem(args: Record<string, unknown>, options: ParserOptions): string | undefined {
  for (const key of Object.keys(options.key)) {
    const value = args[key];
    if (value === undefined) continue;
    if (Array.isArray(value) && !options.array.includes(key)) return `--${key} was given ${value.length} times; give it once`;
    if (options.number.includes(key) && (typeof value !== 'number' || !Number.isFinite(value))) return `--${key} must be a number`;
  }
  return undefined;
}

/** A usage error as a FerryError (exit 2, JSON with --json), with a hint naming the command's --help. */
function usageError(message: string, argv: readonly string[], scriptName: string): FerryError {
  const names = new Set(COMMANDS.map((c) => String(c.command).split(' ')[0]));
  const command = argv.find((a) => !a.startsWith('-'));
  const hint =
    command && names.has(command)
      ? `Run \`${scriptName} ${command} --help\` for the arguments it takes.`
      : `Commands: ${[...names].join(', ')}. Run \`${scriptName} --help\` for what each does.`;
  return new FerryError('ERR_PRECHECK_BAD_INPUT', message.trim().replace(/\s*\n\s*/g, '; '), { hint });
}

export async function main(argv: string[], scriptName = 'ferry'): Promise<void> {
  // If a command's promise never settles (a wait nothing will end), Node exits when its event loop runs dry, with
  // status 0 by default: that must read as the bug it is, never as success.
  let settled = false;
  const stalled = () => {
    if (settled) return;
    process.stderr.write('ferry stopped with work still pending; this is a bug in ferry, please report it.\n');
    process.exitCode = EXIT.bug;
  };
  process.once('beforeExit', stalled);
  // `ferry --version [--json]` is `ferry version`: yargs' own --version would print only ferry's.
  if (argv[0] === '--version' || argv[0] === '-V') argv = ['version', ...argv.slice(1)];
  try {
    await buildParser(argv, scriptName).parseAsync();
    settled = true;
  } catch (err) {
    settled = true;
    const json = argv.includes('--json');
    process.stderr.write(renderError(err, { json, color: process.stderr.isTTY === true }));
    process.exitCode = err instanceof FerryError ? exitCodeFor(err.code) : EXIT.bug;
  }
}
