/**
 * Terminal sessions through the real CRIU (root, provisioned host): a tmux server with a loop running in its pane,
 * a screen session and a whole interactive shell session are checkpointed (the original ends), restored on this
 * host, and checked from outside: the old screen content is there, the loop goes on, the shell answers.
 * Every process and server started here is killed by pid (or `tmux -L SOCK kill-server`) afterwards, also on failure.
 */
import { killQuietly, runCleanups } from '../testing/cleanups';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, read, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../model/ferry-error';
import { buildFixture } from '../testing/fixtures';
import { isAlive, waitFor } from '../testing/workload';
import { readProcessTree } from './proc-tree';
import { checkpointSession } from './session-checkpoint';
import { restoreSession } from './session-restore';

jest.setTimeout(90_000);

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
const haveScreen = spawnSync('screen', ['-v']).error === undefined;
if (!haveTmux) console.log('skipping the tmux session tests: tmux is not installed (apt-get install tmux; scripts/provision-host.sh does)');
if (!haveScreen) console.log('skipping the screen session test: screen is not installed (apt-get install screen; scripts/provision-host.sh does)');
const tmuxTest = haveTmux ? test : test.skip;
const screenTest = haveScreen ? test : test.skip;

let dir: string;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-session-int-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

function killLater(...pids: number[]): void {
  cleanups.push(() => killQuietly(...pids));
}

/** Kills a whole tree later: the pids it has now and, after a restore, the same pids again. */
function killTreeLater(rootPid: number): void {
  const pids = readProcessTree(rootPid).map((t) => t.pid);
  killLater(...pids);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- tmux ----------

class Tmux {
  readonly socket = `ferry-int-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  private socketPath: string | undefined;

  constructor() {
    // Registered first, so it runs last: after the SIGKILLs a killed server's socket file is left; remove it.
    cleanups.push(() => {
      this.killServer();
      if (this.socketPath) rmSync(this.socketPath, { force: true });
    });
  }

  run(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  serverPid(): number {
    return Number(this.run('display-message', '-p', '-t', 'work', '#{pid}').trim());
  }

  screen(): string {
    return this.run('capture-pane', '-p', '-t', 'work', '-S', '-200');
  }

  /** A server with session "work" whose bash runs a loop printing "tick N" and writing N to `counterFile`. */
  start(counterFile: string): void {
    this.run('new-session', '-d', '-s', 'work', '-x', '120', '-y', '30', 'bash --norc --noprofile');
    this.run('send-keys', '-t', 'work', `PS1='$ '; i=0; while :; do i=$((i+1)); echo "tick $i"; echo $i > ${counterFile}; sleep 0.2; done`, 'Enter');
    this.socketPath = this.run('display-message', '-p', '-t', 'work', '#{socket_path}').trim();
    killTreeLater(this.serverPid());
  }

  killServer(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
  }
}

function counter(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

const waitForCounter = (file: string, atLeast: number) => waitFor(`counter >= ${atLeast}`, () => counter(file) >= atLeast, 15_000);

tmuxTest('a tmux session with a running loop: checkpoint (original gone), restore, same screen, the loop goes on', async () => {
  const tmux = new Tmux();
  const counterFile = join(dir, 'counter');
  tmux.start(counterFile);
  await waitForCounter(counterFile, 5);
  const serverPid = tmux.serverPid();

  const images = join(dir, 'images');
  const checkpoint = await checkpointSession({ kind: 'tmux', session: 'work', socket: { name: tmux.socket } }, { imagesDir: images });
  expect(checkpoint.manifest).toMatchObject({ kind: 'tmux', rootPid: serverPid, shellJob: false, terminal: 'none', leaveRunning: false });
  expect(checkpoint.manifest.tmux?.sessions).toEqual(['work']);
  expect(checkpoint.manifest.listeningSockets.map((s) => s.path)).toEqual([checkpoint.manifest.tmux?.path]);
  expect(checkpoint.pidsStillInUse).toEqual([]);
  expect(isAlive(serverPid)).toBe(false);
  const atDump = counter(counterFile);
  await sleep(500);
  expect(counter(counterFile)).toBe(atDump); // nothing runs while checkpointed

  // CRIU recreates the pane's pty with its number: while another terminal holds that number, ferry refuses.
  expect(checkpoint.manifest.ptys).toHaveLength(1);
  const pty = checkpoint.manifest.ptys[0]!;
  const held: number[] = [];
  try {
    while (!existsSync(`/dev/pts/${pty}`) && held.length < 64) held.push(openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY));
    const busy = await restoreSession({ imagesDir: images, pidWaitMs: 100 }).catch((err: unknown) => err);
    expect(isFerryError(busy, 'ERR_PRECHECK_INCOMPATIBLE')).toBe(true);
    expect((busy as Error).message).toContain(`/dev/pts/${pty} is in use`);
  } finally {
    for (const fd of held) closeSync(fd);
  }

  // "Another box": the socket's directory is not there either.
  rmSync(checkpoint.manifest.tmux!.path, { force: true });
  const restored = await restoreSession({ imagesDir: images });
  killLater(...checkpoint.manifest.pids);
  expect(restored.pid).toBe(serverPid);
  expect(restored.tmuxSessions).toEqual(['work']);
  expect(restored.warnings).toEqual([]);

  const screen = tmux.screen();
  expect(screen).toContain('tick 1\n');
  expect(screen).toContain(`tick ${atDump}\n`);
  await waitForCounter(counterFile, atDump + 5);
  await waitFor('new ticks on the restored screen', () => tmux.screen().includes(`tick ${atDump + 5}\n`), 10_000);

  // The shell inside still works: stop the loop, ask it something.
  tmux.run('send-keys', '-t', 'work', 'C-c');
  tmux.run('send-keys', '-t', 'work', 'echo "alive $((6*7))"', 'Enter');
  await waitFor('the shell to answer', () => tmux.screen().includes('alive 42'), 10_000);
});

tmuxTest('attached clients are refused, --detach-clients detaches them; a session still running here is not restored over', async () => {
  const tmux = new Tmux();
  const counterFile = join(dir, 'counter');
  tmux.start(counterFile);
  await waitForCounter(counterFile, 2);
  const serverPid = tmux.serverPid();

  // A client attached from a terminal of its own (outside the server's tree).
  const client = startPtySession(['tmux', '-L', tmux.socket, 'attach', '-t', 'work']);
  await waitFor('the client to attach', () => tmux.run('list-clients').trim().length > 0, 10_000);
  const target = { kind: 'tmux', session: 'work', socket: { name: tmux.socket } } as const;
  const refused = await checkpointSession(target, { imagesDir: join(dir, 'refused') }).catch((err: unknown) => err);
  expect(isFerryError(refused, 'ERR_PRECHECK_UNSUPPORTED_CONFIG')).toBe(true);
  expect((refused as Error).message).toMatch(/1 client is attached/);
  expect(isAlive(serverPid)).toBe(true);

  const images = join(dir, 'images');
  const kept = await checkpointSession(target, { imagesDir: images, detachClients: true, leaveRunning: true });
  expect(kept.detachedClients).toHaveLength(1);
  expect(isAlive(serverPid)).toBe(true);
  expect(tmux.run('list-clients').trim()).toBe('');
  await waitFor('the detached client to exit', () => !isAlive(client.pid!), 10_000);

  // The original runs on (--leave-running): its pids and socket are taken here.
  const collision = await restoreSession({ imagesDir: images, pidWaitMs: 100 }).catch((err: unknown) => err);
  expect(isFerryError(collision, 'ERR_PRECHECK_INCOMPATIBLE')).toBe(true);
  expect((collision as { hint: string }).hint).toMatch(/leave-running/);
  expect(isAlive(serverPid)).toBe(true);
  // Its loop still counts. One read is not enough: it can fall between the shell's truncation of the file and its
  // write, and see nothing (CI once read 0 here).
  const running = await waitFor('the counter', () => counter(counterFile) || undefined, 10_000);
  await waitForCounter(counterFile, running + 1);
});

// ---------- screen ----------

screenTest('a screen session: checkpoint by name, restore, the loop goes on and the old screen is there', async () => {
  const name = `ferry-int-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const counterFile = join(dir, 'counter');
  const loop = join(dir, 'loop.sh');
  writeFileSync(loop, `i=0; while :; do i=$((i+1)); echo "stick $i"; echo $i > ${counterFile}; sleep 0.2; done\n`);
  const started = spawnSync('screen', ['-dmS', name, 'bash', '--norc', '--noprofile', loop], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
  expect(started.status).toBe(0);
  const screenPid = Number(/(\d+)\./.exec(spawnSync('screen', ['-ls', name], { encoding: 'utf8' }).stdout)?.[1]);
  cleanups.push(() => {
    spawnSync('screen', ['-S', name, '-X', 'quit'], { stdio: 'ignore' });
    spawnSync('screen', ['-wipe', name], { stdio: 'ignore' }); // a killed server's socket
  });
  killTreeLater(screenPid);
  await waitForCounter(counterFile, 3);

  const images = join(dir, 'images');
  const checkpoint = await checkpointSession({ kind: 'screen', id: name }, { imagesDir: images });
  expect(checkpoint.manifest).toMatchObject({ kind: 'screen', rootPid: screenPid, terminal: 'none', screen: { id: `${screenPid}.${name}` } });
  expect(isAlive(screenPid)).toBe(false);
  const atDump = counter(counterFile);
  // "Another box": no socket directory.
  const socketDir = checkpoint.manifest.listeningSockets[0]!.dir;
  rmSync(checkpoint.manifest.listeningSockets[0]!.path, { force: true });

  const restored = await restoreSession({ imagesDir: images });
  killLater(...checkpoint.manifest.pids);
  expect(restored.pid).toBe(screenPid);
  expect(existsSync(socketDir.path)).toBe(true);
  await waitForCounter(counterFile, atDump + 5);
  const hardcopy = join(dir, 'hardcopy');
  expect(spawnSync('screen', ['-S', name, '-X', 'hardcopy', '-h', hardcopy]).status).toBe(0);
  await waitFor('the hardcopy', () => existsSync(hardcopy));
  expect(readFileSync(hardcopy, 'utf8')).toContain(`stick ${atDump}\n`);
});

// ---------- a shell session on a terminal of its own ----------

/** fixtures/pty-session.c: runs argv on a new pty whose master stays outside argv's tree. */
function startPtySession(argv: string[]): ChildProcess & { input: string; log: string } {
  const binary = buildFixture('pty-session');
  const id = Math.floor(Math.random() * 1e9);
  const input = join(dir, `input-${id}`);
  const log = join(dir, `screen-${id}`);
  const child = spawn(binary, ['--log', log, '--input', input, '--', ...argv], { stdio: 'ignore', detached: true, env: { ...process.env, TERM: 'xterm' } });
  killLater(child.pid!);
  cleanups.push(() => {
    for (const t of readProcessTree(child.pid!)) killLater(t.pid);
  });
  return Object.assign(child, { input, log });
}

/** Reads a pty master until it hangs up, keeping everything read. */
function readTerminal(fd: number): { text: () => string; ended: Promise<void> } {
  let text = '';
  const buffer = Buffer.alloc(4096);
  const ended = (async () => {
    for (;;) {
      const n = await new Promise<number>((resolve) => read(fd, buffer, 0, buffer.length, null, (err, got) => resolve(err ? 0 : got)));
      if (n === 0) return;
      text += buffer.subarray(0, n).toString('utf8');
    }
  })();
  return { text: () => text, ended };
}

test('a whole shell session (its terminal outside): restored on a new pty whose master ferry hands over', async () => {
  const term = startPtySession(['bash', '--norc', '--noprofile', '-i']);
  const shellPid = await waitFor('the shell', () => {
    try {
      return Number(readFileSync(`/proc/${term.pid}/task/${term.pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
    } catch {
      return undefined;
    }
  });
  await waitFor('the input fifo', () => existsSync(term.input));
  writeFileSync(term.input, "PS1='S$ '; X=kept-in-memory; sleep 300 &\n");
  await waitFor('the background job', () => readProcessTree(shellPid).length >= 2, 10_000);
  killTreeLater(shellPid);

  const images = join(dir, 'images');
  const checkpoint = await checkpointSession({ kind: 'pid', pid: shellPid }, { imagesDir: images });
  expect(checkpoint.manifest).toMatchObject({ kind: 'shell-session', shellJob: true, terminal: 'new-pty' });
  expect(checkpoint.manifest.ptys).toEqual([checkpoint.manifest.externalPty]);
  expect(isAlive(shellPid)).toBe(false);

  const restored = await restoreSession({ imagesDir: images });
  killLater(...checkpoint.manifest.pids);
  expect(restored.pid).toBe(shellPid);
  expect(restored.terminal).toBeDefined();
  const master = restored.terminal!;
  const screen = readTerminal(master.fd);
  try {
    writeSync(master.fd, 'echo "$X $((6*7))"; jobs\n');
    await waitFor('the restored shell to answer', () => /kept-in-memory 42/.test(screen.text()) && /Running\s+sleep 300/.test(screen.text()), 10_000);
    writeSync(master.fd, 'kill %1; exit\n');
    await screen.ended; // EIO: the shell exited and closed its terminal
    await waitFor('the shell to end', () => !isAlive(shellPid), 10_000);
  } finally {
    killQuietly(...checkpoint.manifest.pids);
    await screen.ended;
    master.close();
  }
});
