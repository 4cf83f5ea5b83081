/**
 * The ferry command line: the only code that reads argv and the environment, prints, or exits.
 */
import yargs, { type Argv } from 'yargs';
import { FerryError } from '@ferry/core';
import { agentCommand } from './commands/agent';
import { pageRelayCommand } from './commands/page-relay';
import { doctorCommand } from './commands/doctor';
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
import { EXIT, exitCodeFor } from './exit-codes';
import { renderError } from './render-error';

const COMMANDS = [doctorCommand, psCommand, checkpointCommand, restoreCommand, sessionCommand, startCommand, snapshotCommand, migrateCommand, cloneCommand, drainCommand, replicateCommand, replicasCommand, failoverCommand, agentCommand, pageRelayCommand];

export function buildParser(argv: string[], scriptName: string): Argv {
  let parser = yargs(argv)
    .scriptName(scriptName)
    .usage('$0 <command> [options]')
    .strict()
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, err, y) => {
      if (err) throw err;
      // yargs' own validation: one line, the usage, exit 2. Never a stack trace.
      process.stderr.write(`${scriptName}: ${message}\n\n`);
      y.showHelp((text: string) => process.stderr.write(`${text}\n`));
      process.exit(EXIT.usage);
    });
  for (const command of COMMANDS) parser = parser.command(command as never);
  return parser;
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
