/** Translation of foreign errors met while transferring a directory into FerryErrors, in one place. */
import { FerryError } from '@ferry/core';

type ErrnoError = Error & { code?: string; syscall?: string };

function errnoOf(err: unknown): string | undefined {
  return (err as ErrnoError | undefined)?.code;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoOf(err);
  return code !== undefined && codes.includes(code);
}

/** Reading the source directory failed (EACCES, EIO...). */
export function sourceError(path: string, err: unknown): FerryError {
  const e = err as ErrnoError;
  // No ERR_TRANSFER_* code exists yet: an unreadable source is reported as bad input (see the report to the lead).
  return new FerryError('ERR_PRECHECK_BAD_INPUT', `cannot read ${path} on the source: ${e.message}`, {
    hint: 'Check that the directory exists and is readable by root on the source host.',
    cause: err,
    details: { path, errno: e.code, syscall: e.syscall },
  });
}

/** Writing the destination directory failed (ENOSPC, EROFS...). `path` is relative to the destination. */
export function extractError(path: string, err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as ErrnoError;
  return new FerryError('ERR_AGENT_FAILED', `cannot write ${path} on the destination: ${e.message}`, {
    hint: e.code === 'ENOSPC' ? 'Free space on the destination host and migrate again.' : 'Check the destination directory and its file system.',
    cause: err,
    details: { path, errno: e.code, syscall: e.syscall },
  });
}

/** An archive entry we refuse to extract: it would write outside the directory or through a symlink. */
export function unsafeEntry(name: string, why: string): FerryError {
  return new FerryError('ERR_PRECHECK_BAD_INPUT', `refusing archive entry ${JSON.stringify(name)}: ${why}`, {
    hint: 'The transfer stream was not produced by ferry, or was tampered with; nothing outside the destination was written.',
    details: { entry: name, why },
  });
}

export function transportError(message: string, cause?: unknown): FerryError {
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new FerryError('ERR_TRANSPORT_CLOSED', `${message}${why}`, {
    hint: 'The connection between the hosts failed during the copy; check the network and migrate again.',
    cause,
  });
}

export function protocolError(message: string): FerryError {
  return new FerryError('ERR_AGENT_PROTOCOL', message, {
    hint: 'Install the same ferry version on both hosts.',
  });
}

export function abortError(signal: AbortSignal): FerryError {
  return new FerryError('ERR_ABORTED', 'directory transfer aborted', { cause: signal.reason });
}

/** Errors from the tar parser or the stream itself (no errno, not ours) become transport errors. */
export function asTransferError(err: unknown, what: string): FerryError {
  if (err instanceof FerryError) return err;
  return transportError(what, err);
}
