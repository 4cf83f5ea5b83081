/**
 * GNU screen's command line, for finding a screen session's server (the SCREEN process that holds the ptys) and
 * detaching its display before a checkpoint. An attached display is the user's own terminal, opened by the server:
 * CRIU would have to take that terminal along, so the display is detached first, like a tmux client.
 */
import { execFile } from 'node:child_process';
import { FerryError } from '../model/ferry-error';
import type { TmuxOutcome, TmuxRun } from './tmux';

export interface ScreenSession {
  /** The SCREEN server's pid (the first half of screen's "PID.NAME"). */
  pid: number;
  name: string;
  attached: boolean;
}

export interface ScreenList {
  sessions: ScreenSession[];
  /** The directory of the sessions' sockets ("N Sockets in DIR."), when screen printed it. */
  socketDir?: string;
}

/** Parses `screen -ls` ("\t8386.work\t(date)\t(Detached)" lines, then "1 Socket in /run/screen/S-root."). */
export function parseScreenList(stdout: string): ScreenList {
  const sessions: ScreenSession[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\t(\d+)\.(\S+)\t.*\((Attached|Detached|Multi, attached|Multi, detached)\)\s*$/.exec(line);
    if (m) sessions.push({ pid: Number(m[1]), name: m[2] ?? '', attached: /attached/i.test(m[3] ?? '') });
  }
  const dir = /Sockets?(?: found)? in (\/\S+?)\.?\s*$/m.exec(stdout)?.[1];
  return dir === undefined ? { sessions } : { sessions, socketDir: dir };
}

/** Finds the one session `id` names: "NAME" or "PID.NAME". */
export function pickScreenSession(list: ScreenList, id: string): ScreenSession {
  const matches = list.sessions.filter((s) => s.name === id || `${s.pid}.${s.name}` === id);
  if (matches.length === 1 && matches[0]) return matches[0];
  if (matches.length === 0) {
    const known = list.sessions.map((s) => `${s.pid}.${s.name}`).join(', ') || 'none';
    throw new FerryError('ERR_RUNTIME_NOT_FOUND', `no screen session ${JSON.stringify(id)} (sessions: ${known})`, { hint: 'List them with `screen -ls`.' });
  }
  throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${matches.length} screen sessions are named ${JSON.stringify(id)}`, {
    hint: `Name one as PID.NAME: ${matches.map((s) => `${s.pid}.${s.name}`).join(', ')}.`,
  });
}

export class Screen {
  private readonly run: TmuxRun;

  constructor(options: { screenPath?: string; run?: TmuxRun } = {}) {
    const screenPath = options.screenPath ?? 'screen';
    this.run = options.run ?? ((argv, o) => runScreen(screenPath, argv, o));
  }

  async list(signal?: AbortSignal): Promise<ScreenList> {
    // screen -ls exits 1 when it finds nothing and sometimes when it finds something: its text is what counts.
    const out = await this.run(['-ls'], { signal, timeoutMs: 10_000 });
    return parseScreenList(out.stdout);
  }

  async detach(session: ScreenSession, signal?: AbortSignal): Promise<void> {
    const out = await this.run(['-d', `${session.pid}.${session.name}`], { signal, timeoutMs: 10_000 });
    if (out.code !== 0) {
      throw new FerryError('ERR_RUNTIME_FAILED', `screen -d ${session.pid}.${session.name} failed: ${out.stderr.trim() || out.stdout.trim()}`, {
        hint: 'Detach the display by hand (C-a d), then checkpoint again.',
      });
    }
  }
}

function runScreen(screenPath: string, argv: readonly string[], options: { signal?: AbortSignal; timeoutMs: number }): Promise<TmuxOutcome> {
  return new Promise((resolve, reject) => {
    execFile(screenPath, [...argv], { timeout: options.timeoutMs, signal: options.signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new FerryError('ERR_RUNTIME_UNAVAILABLE', `screen not found (${screenPath})`, { hint: 'Install screen (`apt-get install screen`).', cause: err }));
        return;
      }
      if (err && (err as NodeJS.ErrnoException).name === 'AbortError') {
        reject(new FerryError('ERR_ABORTED', 'interrupted while talking to screen', { hint: 'Run the command again when ready.', cause: err }));
        return;
      }
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
