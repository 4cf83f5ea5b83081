/**
 * Translates what dockerode and docker-modem throw into ferry's codes, keeping the original as `cause`.
 * docker-modem rejects with `statusCode` and `json.message` for an HTTP answer, with a Node errno error (`code`)
 * when the socket cannot be reached, and with a `timeout` error when the daemon does not answer in time.
 */
import type { ErrorCode } from '../model/error-codes';
import { FerryError } from '../model/ferry-error';

interface ModemError {
  statusCode?: number;
  json?: { message?: string } | null;
  reason?: string;
  code?: string;
  message?: string;
}

/** The daemon's own message, or the transport's. */
export function dockerMessage(err: unknown): string {
  const e = (err ?? {}) as ModemError;
  const fromJson = e.json && typeof e.json === 'object' ? e.json.message : undefined;
  return (fromJson ?? e.message ?? String(err)).replace(/^\(HTTP code \d+\) [a-z ]+ - /, '').trim();
}

export function dockerStatus(err: unknown): number | undefined {
  return (err as ModemError | undefined)?.statusCode;
}

/** True when the daemon could not be reached at all (no socket, refused, permission, timeout). */
export function isDaemonUnreachable(err: unknown): boolean {
  const code = (err as ModemError | undefined)?.code;
  if (code && ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE', 'ENOTSOCK'].includes(code)) return true;
  return /timeout/i.test((err as ModemError | undefined)?.message ?? '') && dockerStatus(err) === undefined;
}

export interface TranslateContext {
  /** What ferry was doing, e.g. "inspect web". */
  what: string;
  socket: string;
  /** Container or image name the call was about. */
  subject?: string;
  /** Code for errors that are none of the recognised ones. */
  fallback?: ErrorCode;
}

export function translateDockerError(err: unknown, ctx: TranslateContext): FerryError {
  if (err instanceof FerryError) return err;
  const status = dockerStatus(err);
  const message = dockerMessage(err);
  const details = { socket: ctx.socket, statusCode: status, dockerMessage: message, subject: ctx.subject };
  if (isDaemonUnreachable(err)) {
    return new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot reach dockerd at ${ctx.socket} (${message})`, {
      hint: 'Start dockerd, or point DOCKER_HOST at its socket (unix:///PATH).',
      cause: err,
      details,
    });
  }
  if (status === 404) {
    return new FerryError('ERR_RUNTIME_NOT_FOUND', `docker has no ${ctx.subject ? `container named ${ctx.subject}` : 'such object'} (${message})`, {
      hint: 'Run `ferry ps` to see the containers ferry can find.',
      cause: err,
      details,
    });
  }
  if (status === 409 && /already in use|Conflict\. The container name/i.test(message)) {
    return new FerryError('ERR_RUNTIME_NAME_TAKEN', `docker already has a container named ${ctx.subject ?? '?'}`, {
      hint: `Restore under another name, or remove it first (\`docker rm -f ${ctx.subject ?? 'NAME'}\`).`,
      cause: err,
      details,
    });
  }
  if (status === 409 && /is not running|is paused|is restarting/i.test(message)) {
    return new FerryError('ERR_RUNTIME_NOT_RUNNING', `docker ${ctx.what} failed: ${message}`, {
      hint: 'Check the container with `docker ps -a`.',
      cause: err,
      details,
    });
  }
  if (/criu/i.test(message) && /restore/i.test(message)) {
    const logPath = /(\/\S+?restore\.log)/.exec(message)?.[1];
    return new FerryError('ERR_CRIU_RESTORE_FAILED', `docker ${ctx.what} failed in CRIU: ${message}`, {
      // containerd deletes the task's work directory (and the log in it) when the restore fails.
      hint: 'The message quotes CRIU\'s failure (its log went with the failed container: containerd removes the task directory); `ferry doctor` checks the host.',
      cause: err,
      details: { ...details, logPath },
    });
  }
  return new FerryError(ctx.fallback ?? 'ERR_RUNTIME_FAILED', `docker ${ctx.what} failed: ${message}`, {
    hint: 'Check the daemon with `docker info` and the container with `docker ps -a`.',
    cause: err,
    details,
  });
}
