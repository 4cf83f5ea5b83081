/**
 * `ferry session` as a user runs it (the built CLI, root, real CRIU), for what needs terminals around ferry itself:
 * a shell job moved from one terminal to another (ferry restores it from inside the second one), and a whole shell
 * session that `ferry session restore` serves on its own stdio. Terminals are fixtures/pty-session.c instances; every
 * process started here is killed by pid afterwards, also on failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProcessTree, readSessionManifest } from '@ferry/core';
import { buildFixture, killQuietly, runCleanups, isAlive, waitFor } from '@ferry/core/testing';

jest.setTimeout(90_000);

const BIN = join(__dirname, '..', '..', 'bin', 'ferry.js');

let dir: string;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-session-cli-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

function killLater(...pids: number[]): void {
  cleanups.push(() => killQuietly(...pids));
}

function ferry(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Terminal {
  child: ChildProcess;
  /** The shell running on the terminal (the session leader). */
  shellPid: number;
  type(text: string): void;
  screen(): string;
}

/** A new terminal (fixtures/pty-session.c) running an interactive bash; everything in it is killed afterwards. */
async function openTerminal(prompt: string): Promise<Terminal> {
  const id = Math.floor(Math.random() * 1e9);
  const input = join(dir, `input-${id}`);
  const log = join(dir, `screen-${id}`);
  const child = spawn(buildFixture('pty-session'), ['--log', log, '--input', input, '--', 'bash', '--norc', '--noprofile', '-i'], {
    stdio: 'ignore',
    detached: true,
    env: { ...process.env, TERM: 'xterm' },
  });
  const pid = child.pid!;
  cleanups.push(() => killLater(...readProcessTree(pid).map((t) => t.pid)));
  killLater(pid);
  const shellPid = await waitFor('the shell', () => {
    try {
      return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
    } catch {
      return undefined;
    }
  });
  await waitFor('the input fifo', () => existsSync(input));
  const terminal = {
    child,
    shellPid,
    type: (text: string) => writeFileSync(input, text),
    screen: () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
  };
  terminal.type(`PS1='${prompt}'\n`);
  return terminal;
}

const lastTick = (text: string) => Math.max(0, ...[...text.matchAll(/job-tick (\d+)/g)].map((m) => Number(m[1])));

test('a shell job moves to another terminal: checkpointed from outside, restored by ferry running in the new terminal', async () => {
  const first = await openTerminal('F$ ');
  first.type('i=0; while :; do i=$((i+1)); echo "job-tick $i"; sleep 0.2; done &\n');
  const jobPid = await waitFor('the job', () => readProcessTree(first.shellPid).find((t) => t.pid !== first.shellPid && t.pgid === t.pid)?.pid, 10_000);
  killLater(...readProcessTree(jobPid).map((t) => t.pid));
  await waitFor('ticks on the first terminal', () => lastTick(first.screen()) >= 3, 10_000);

  const images = join(dir, 'images');
  const checkpoint = ferry(['session', 'checkpoint', String(jobPid), '--dir', images, '--json']);
  expect(checkpoint.stderr).toBe('');
  expect(checkpoint.status).toBe(0);
  expect(JSON.parse(checkpoint.stdout)).toMatchObject({ event: 'session-checkpoint', kind: 'shell-job', rootPid: jobPid, terminal: 'caller' });
  expect(isAlive(jobPid)).toBe(false);
  killLater(...readSessionManifest(images).pids);
  const atDump = lastTick(first.screen());

  // Without a terminal there is nothing to resume the job on.
  const refused = ferry(['session', 'restore', images]);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/ERR_PRECHECK_BAD_INPUT/);
  expect(refused.stderr).toMatch(/interactive terminal/);

  const second = await openTerminal('G$ ');
  second.type(`${process.execPath} ${BIN} session restore ${images}\n`);
  await waitFor('the restore report', () => second.screen().includes('the job runs in the background of this terminal'), 30_000);
  await waitFor('the job ticking on the second terminal', () => lastTick(second.screen()) >= atDump + 5, 15_000);
  expect(isAlive(jobPid)).toBe(true);
  const ids = readProcessTree(jobPid)[0]!;
  expect(ids.sid).toBe(second.shellPid); // it joined the second terminal's session
  expect(lastTick(first.screen())).toBe(atDump); // and left the first one for good
});

test('a whole shell session: `ferry session restore` is its new terminal until the shell exits', async () => {
  const term = await openTerminal('S$ ');
  term.type('X=kept-in-memory; sleep 300 &\n');
  await waitFor('the background job', () => readProcessTree(term.shellPid).length >= 2, 10_000);
  killLater(...readProcessTree(term.shellPid).map((t) => t.pid));

  const images = join(dir, 'images');
  const checkpoint = ferry(['session', 'checkpoint', String(term.shellPid), '--dir', images]);
  expect(checkpoint.status).toBe(0);
  expect(checkpoint.stdout).toMatch(/kind +shell-session: session leader \d+ has \/dev\/pts\/\d+ as its terminal/);

  // stdin is a pipe here: ferry relays it to the restored shell and the shell's output to stdout.
  const restore = ferry(['session', 'restore', images], 'echo "$X $((6*7))"; jobs; kill %1; exit\n');
  expect(restore.stderr).toBe('');
  expect(restore.status).toBe(0);
  expect(restore.stdout).toMatch(/restored shell-session \(pid \d+\)/);
  expect(restore.stdout).toMatch(/kept-in-memory 42/);
  expect(restore.stdout).toMatch(/Running\s+sleep 300/);
  await waitFor('the shell to end', () => !isAlive(term.shellPid), 10_000);
});

test('bad targets and missing images: one line, the right exit code', () => {
  const bad = ferry(['session', 'checkpoint', 'ssh:nowhere', '--dir', join(dir, 'x')]);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/name a PID, tmux:SESSION or screen:NAME/);
  const noServer = ferry(['session', 'checkpoint', 'tmux:work', '-L', `ferry-none-${process.pid}`, '--dir', join(dir, 'y')]);
  expect(noServer.status).toBe(5);
  expect(noServer.stderr).toMatch(/ERR_RUNTIME_(NOT_FOUND|UNAVAILABLE)/);
  const missing = ferry(['session', 'restore', join(dir, 'nothing-here')]);
  expect(missing.status).toBe(4);
  expect(missing.stderr).toMatch(/ERR_IMAGE_NOT_FOUND/);
});
