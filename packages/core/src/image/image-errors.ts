import { FerryError } from '../model/ferry-error';

const CORRUPT_HINT =
  'The image directory is damaged or incomplete: dump again, or transfer it again and check it against its manifest.';

export function imageCorrupt(path: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): FerryError {
  return new FerryError('ERR_IMAGE_CORRUPT', `${path}: ${message}`, { hint: CORRUPT_HINT, details: { path, ...details }, cause });
}

export function imageNotFound(path: string, message: string, cause?: unknown): FerryError {
  return new FerryError('ERR_IMAGE_NOT_FOUND', `${path}: ${message}`, {
    hint: 'Check the path: it must be a directory written by `criu dump -D DIR` (or ferry), and readable by this user.',
    details: { path },
    cause,
  });
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
