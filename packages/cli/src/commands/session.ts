/**
 * `ferry session checkpoint TARGET` / `ferry session restore DIR`: terminal sessions (a tmux server, a shell job, a
 * whole shell session) suspended into an image directory and resumed here or on another host. See docs/sessions.md.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { read, write } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import {
  checkpointSession,
  parseSessionTarget,
  restoreSession,
  type SessionCheckpointResult,
  type SessionRestoreResult,
  type TmuxSocket,
} from '@ferry/core';
import { createProgress, formatMs } from '../render-checkpoint';
import { formatBytes } from '../render-events';
import { withInterrupt } from './interrupt';

export interface SessionCheckpointArgs {
  target: string;
  dir?: string;
  'leave-running': boolean;
  'detach-clients': boolean;
  'socket-name'?: string;
  'socket-path'?: string;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
}

export interface SessionRestoreArgs {
  dir: string;
  json: boolean;
}

const checkpointSubcommand: CommandModule<object, SessionCheckpointArgs> = {
  command: 'checkpoint <target>',
  describe: 'Checkpoint a tmux server (tmux:SESSION), a screen session (screen:NAME) or a process tree on a terminal (PID)',
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'tmux:SESSION, tmux (the whole server), screen:NAME, or the PID of a job or shell' })
      .option('dir', { type: 'string', describe: 'Image directory (default /var/lib/ferry/sessions/NAME-TIME)' })
      .option('leave-running', { type: 'boolean', default: false, describe: 'Keep the session running after the checkpoint' })
      .option('detach-clients', { type: 'boolean', default: false, describe: 'Detach attached tmux clients / the screen display first (else: refuse)' })
      .option('socket-name', { alias: 'L', type: 'string', describe: 'tmux server socket name, as tmux -L' })
      .option('socket-path', { alias: 'S', type: 'string', describe: 'tmux server socket path, as tmux -S' })
      .option('tcp-established', { type: 'boolean', default: false, describe: 'Checkpoint established TCP connections (e.g. ssh in a pane)' })
      .option('file-locks', { type: 'boolean', default: true })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with the result' }),
  handler: async (args) => {
    const socket: TmuxSocket = {};
    if (args['socket-name'] !== undefined) socket.name = args['socket-name'];
    if (args['socket-path'] !== undefined) socket.path = resolve(args['socket-path']);
    const target = parseSessionTarget(args.target, socket);
    const name =
      target.kind === 'pid' ? `pid-${target.pid}` : target.kind === 'screen' ? `screen-${target.id}` : `tmux-${target.session ?? socket.name ?? 'default'}`;
    const dir = resolve(args.dir ?? `/var/lib/ferry/sessions/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    progress.start(`checkpointing ${args.target} into ${dir}`);
    let ok = false;
    try {
      const result = await withInterrupt((signal) =>
        checkpointSession(target, {
          imagesDir: dir,
          leaveRunning: args['leave-running'],
          detachClients: args['detach-clients'],
          tcpEstablished: args['tcp-established'],
          fileLocks: args['file-locks'],
          signal,
        }),
      );
      ok = true;
      progress.end(true);
      process.stdout.write(args.json ? sessionCheckpointJson(result) : renderSessionCheckpoint(result));
    } finally {
      if (!ok) progress.end(false);
    }
  },
};

const restoreSubcommand: CommandModule<object, SessionRestoreArgs> = {
  command: 'restore <dir>',
  describe: 'Restore a session from an image directory (again and again: the images are not consumed)',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'Image directory written by `ferry session checkpoint`' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object with the result' }),
  handler: async (args) => {
    const imagesDir = resolve(args.dir);
    const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
    progress.start(`restoring the session in ${imagesDir}`);
    let ok = false;
    let result: SessionRestoreResult;
    try {
      result = await withInterrupt((signal) =>
        // A shell job resumes on the terminal ferry runs on: CRIU attaches it to its stdin, which is ours.
        restoreSession({ imagesDir, signal, ...(process.stdin.isTTY ? { terminalFd: 0 } : {}) }),
      );
      ok = true;
      progress.end(true);
    } finally {
      if (!ok) progress.end(false);
    }
    process.stdout.write(args.json ? sessionRestoreJson(imagesDir, result) : renderSessionRestore(imagesDir, result));
    if (result.terminal) {
      // A shell session got a new terminal whose master is ours: be its terminal until the session ends.
      await relayTerminal(result.terminal, result.manifest.externalPty);
    }
  },
};

export const sessionCommand: CommandModule<object, object> = {
  command: 'session <command>',
  describe: 'Checkpoint and restore terminal sessions: tmux servers, shell jobs, shell sessions',
  builder: (y: Argv) =>
    y
      .command(checkpointSubcommand as never)
      .command(restoreSubcommand as never)
      .demandCommand(1, 'Name a session command: checkpoint or restore.'),
  handler: () => undefined,
};

export function renderSessionCheckpoint(r: SessionCheckpointResult): string {
  const m = r.manifest;
  const what = m.tmux
    ? `tmux server ${m.tmux.path} (pid ${m.rootPid}; sessions ${m.tmux.sessions.join(', ')})`
    : m.screen
      ? `screen session ${m.screen.id}`
      : `${m.kind} of pid ${m.rootPid}`;
  const lines = [
    `checkpointed ${what} into ${r.imagesDir}`,
    `  kind          ${m.kind}: ${m.reason}`,
    `  frozen        ${formatMs(r.stats.frozenMs)}`,
    `  dump time     ${formatMs(r.stats.totalMs)}${r.stats.pagesWritten !== undefined ? ` (${r.stats.pagesWritten} pages written)` : ''}`,
    `  image size    ${formatBytes(r.stats.imageBytes)}`,
  ];
  if (r.detachedClients.length > 0) lines.push(`  detached      ${r.detachedClients.map((c) => c.name).join(', ')}`);
  for (const warning of r.warnings) lines.push(`  warning: ${warning}`);
  lines.push(
    m.leaveRunning
      ? '  the session keeps running'
      : `  the session was stopped; bring it back with \`ferry session restore ${r.imagesDir}\``,
  );
  return `${lines.join('\n')}\n`;
}

export function sessionCheckpointJson(r: SessionCheckpointResult): string {
  return `${JSON.stringify({
    event: 'session-checkpoint',
    imagesDir: r.imagesDir,
    kind: r.manifest.kind,
    rootPid: r.manifest.rootPid,
    terminal: r.manifest.terminal,
    tmux: r.manifest.tmux,
    screen: r.manifest.screen,
    leaveRunning: r.manifest.leaveRunning,
    detachedClients: r.detachedClients,
    stats: r.stats,
    warnings: r.warnings,
  })}\n`;
}

export function renderSessionRestore(imagesDir: string, r: SessionRestoreResult): string {
  const m = r.manifest;
  const lines = [`restored ${m.kind} (pid ${r.pid}) from ${imagesDir}`, `  restore time  ${formatMs(r.restoreMs)}`];
  if (m.tmux) {
    const first = r.tmuxSessions?.[0] ?? m.tmux.sessions[0];
    lines.push(`  sessions      ${(r.tmuxSessions ?? []).join(', ') || 'none answered'}`);
    if (first !== undefined) lines.push(`  attach with   tmux -S ${m.tmux.path} attach -t ${first}`);
  } else if (m.screen) {
    lines.push(`  attach with   screen -r ${m.screen.id}`);
  } else if (m.terminal === 'caller') {
    lines.push('  the job runs in the background of this terminal');
  } else if (m.terminal === 'new-pty') {
    lines.push('  attached to its new terminal; the session ends when its shell exits');
  }
  for (const warning of r.warnings) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

export function sessionRestoreJson(imagesDir: string, r: SessionRestoreResult): string {
  return `${JSON.stringify({
    event: 'session-restore',
    imagesDir,
    kind: r.manifest.kind,
    pid: r.pid,
    terminal: r.manifest.terminal,
    restoreMs: r.restoreMs,
    tmuxSessions: r.tmuxSessions,
    warnings: r.warnings,
  })}\n`;
}

/**
 * Relays between this process's stdio and the master of a restored session's terminal until the session hangs up
 * (its last process closed the terminal: EIO). On a TTY: raw mode, and the pty gets our window size (and its
 * changes). The master stays owned by its handle (closed here at the end); reads and writes go through libuv's
 * thread pool on the blocking descriptor CRIU sent.
 */
async function relayTerminal(master: NonNullable<SessionRestoreResult['terminal']>, ptyIndex: number | undefined): Promise<void> {
  const fd = master.fd;
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  const resize = () => {
    if (ptyIndex === undefined || !process.stdout.isTTY) return;
    // The window size lives in the pty, shared by both sides: set it through the slave, as stty does.
    execFile('stty', ['-F', `/dev/pts/${ptyIndex}`, 'rows', String(process.stdout.rows), 'cols', String(process.stdout.columns)], () => undefined);
  };
  let writes = Promise.resolve();
  const forward = (chunk: Buffer) => {
    writes = writes.then(() => writeAll(fd, chunk)).catch(() => undefined);
  };
  try {
    if (raw) stdin.setRawMode(true);
    resize();
    process.stdout.on('resize', resize);
    stdin.on('data', forward);
    stdin.resume();
    const buffer = Buffer.alloc(16 * 1024);
    for (;;) {
      let n: number;
      try {
        n = await readSome(fd, buffer);
      } catch {
        break; // EIO: every slave is closed, the session is over
      }
      if (n === 0) break;
      await new Promise<void>((done) => (process.stdout.write(buffer.subarray(0, n)) ? done() : process.stdout.once('drain', done)));
    }
  } finally {
    stdin.off('data', forward);
    stdin.pause();
    process.stdout.off('resize', resize);
    if (raw) stdin.setRawMode(false);
    await writes;
    master.close();
  }
}

function readSome(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((done, fail) => read(fd, buffer, 0, buffer.length, null, (err, n) => (err ? fail(err) : done(n))));
}

async function writeAll(fd: number, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    offset += await new Promise<number>((done, fail) =>
      write(fd, chunk, offset, chunk.length - offset, null, (err, n) => (err ? fail(err) : done(n))),
    );
  }
}
