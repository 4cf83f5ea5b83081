/**
 * The tmux command line, for finding a tmux server and talking to it around a checkpoint: its pid and socket, its
 * sessions and attached clients, detaching them. argv arrays only (never a shell string), each call with a deadline.
 *
 * A tmux server is one process tree: the server holds every pane's pty master, the panes' programs hold the slaves
 * and lead their own sessions, and clients (`tmux attach`) are separate processes connected over the server's unix
 * socket. CRIU can dump the server's tree only while no client is connected ("Can't dump half of stream unix
 * connection"), and everything it holds, every session of that server, goes with it.
 */
import { execFile } from 'node:child_process';
import { FerryError } from '../model/ferry-error';

/** Which server: `-L NAME` (a socket in tmux's directory), `-S PATH`, or tmux's default socket when neither. */
export interface TmuxSocket {
  name?: string;
  path?: string;
}

export interface TmuxOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type TmuxRun = (argv: readonly string[], options: { signal?: AbortSignal; timeoutMs: number }) => Promise<TmuxOutcome>;

export interface TmuxSessionInfo {
  name: string;
  attachedClients: number;
}

export interface TmuxServerInfo {
  pid: number;
  socketPath: string;
  sessions: TmuxSessionInfo[];
}

export interface TmuxClient {
  /** tmux's client name: the client's terminal (/dev/pts/N). */
  name: string;
  pid: number;
  session: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const FIELD = '\t';

export class TmuxServer {
  private readonly run: TmuxRun;

  constructor(
    readonly socket: TmuxSocket,
    options: { tmuxPath?: string; run?: TmuxRun } = {},
  ) {
    if (socket.name !== undefined && socket.path !== undefined) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'name a tmux socket either by name (-L) or by path (-S), not both');
    }
    const tmuxPath = options.tmuxPath ?? 'tmux';
    this.run = options.run ?? ((argv, o) => runTmux(tmuxPath, argv, o));
  }

  /** How to name this server on tmux's command line (`-L NAME`, `-S PATH`, or nothing). */
  get socketArgs(): string[] {
    if (this.socket.path !== undefined) return ['-S', this.socket.path];
    if (this.socket.name !== undefined) return ['-L', this.socket.name];
    return [];
  }

  /** Describes the server for messages: `tmux -L work`. */
  get label(): string {
    return ['tmux', ...this.socketArgs].join(' ');
  }

  argv(args: readonly string[]): string[] {
    return [...this.socketArgs, ...args];
  }

  /** The server's pid, socket and sessions; ERR_RUNTIME_NOT_FOUND when no server answers on this socket. */
  async info(signal?: AbortSignal): Promise<TmuxServerInfo> {
    const out = await this.call(['list-sessions', '-F', ['#{session_name}', '#{pid}', '#{socket_path}', '#{session_attached}'].join(FIELD)], signal);
    if (out.code !== 0) {
      throw new FerryError('ERR_RUNTIME_NOT_FOUND', `no tmux server answers (${this.label}): ${firstLine(out.stderr) || `exit ${out.code}`}`, {
        hint: 'List servers with `ls /tmp/tmux-$(id -u)/`; name one with -L NAME or -S PATH.',
        details: { stderr: out.stderr },
      });
    }
    return parseServerInfo(out.stdout, this.label);
  }

  async clients(signal?: AbortSignal): Promise<TmuxClient[]> {
    const out = await this.call(['list-clients', '-F', ['#{client_name}', '#{client_pid}', '#{client_session}'].join(FIELD)], signal);
    if (out.code !== 0) throw this.failed('list-clients', out);
    return parseClients(out.stdout);
  }

  async detachClient(name: string, signal?: AbortSignal): Promise<void> {
    const out = await this.call(['detach-client', '-t', name], signal);
    // A client that went away by itself meanwhile is detached too.
    if (out.code !== 0 && !/can't find client/i.test(out.stderr)) throw this.failed('detach-client', out);
  }

  async hasSession(name: string, signal?: AbortSignal): Promise<boolean> {
    const out = await this.call(['has-session', '-t', `=${name}`], signal);
    return out.code === 0;
  }

  private async call(args: readonly string[], signal?: AbortSignal): Promise<TmuxOutcome> {
    return this.run(this.argv(args), { signal, timeoutMs: DEFAULT_TIMEOUT_MS });
  }

  private failed(what: string, out: TmuxOutcome): FerryError {
    return new FerryError('ERR_RUNTIME_FAILED', `${this.label} ${what} failed: ${firstLine(out.stderr) || `exit ${out.code}`}`, {
      hint: 'Check the tmux server with `tmux ls`.',
      details: { stderr: out.stderr },
    });
  }
}

/** Parses `list-sessions -F '#{session_name}\t#{pid}\t#{socket_path}\t#{session_attached}'`. */
export function parseServerInfo(stdout: string, label = 'tmux'): TmuxServerInfo {
  const rows = stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split(FIELD))
    .filter((r): r is [string, string, string, string] => r.length === 4);
  const first = rows[0];
  if (!first || rows.length !== stdout.split('\n').filter((l) => l.length > 0).length) {
    throw new FerryError('ERR_RUNTIME_FAILED', `${label} list-sessions printed something unexpected: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const pid = Number(first[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new FerryError('ERR_RUNTIME_FAILED', `${label} reported server pid ${JSON.stringify(first[1])}`);
  return { pid, socketPath: first[2], sessions: rows.map((r) => ({ name: r[0], attachedClients: Number(r[3]) || 0 })) };
}

/** Parses `list-clients -F '#{client_name}\t#{client_pid}\t#{client_session}'`. */
export function parseClients(stdout: string): TmuxClient[] {
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [name = '', pid, session = ''] = l.split(FIELD);
      return { name, pid: Number(pid), session };
    });
}

function runTmux(tmuxPath: string, argv: readonly string[], options: { signal?: AbortSignal; timeoutMs: number }): Promise<TmuxOutcome> {
  return new Promise((resolve, reject) => {
    execFile(tmuxPath, [...argv], { timeout: options.timeoutMs, signal: options.signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new FerryError('ERR_RUNTIME_UNAVAILABLE', `tmux not found (${tmuxPath})`, {
            hint: 'Install tmux (`apt-get install tmux`); the version must match the one that ran the session.',
            cause: err,
          }),
        );
        return;
      }
      if (err && (err as NodeJS.ErrnoException).name === 'AbortError') {
        reject(new FerryError('ERR_ABORTED', 'interrupted while talking to tmux', { hint: 'Run the command again when ready.', cause: err }));
        return;
      }
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
