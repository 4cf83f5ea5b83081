/**
 * ferry-container.json: what a runtime adapter writes next to CRIU's images at checkpoint, because CRIU keeps none of
 * it and a restore (here or on another host) needs it. Each adapter has its own record (runc-record.ts,
 * lxc-record.ts, docker-record.ts) under one file name and format tag; `runtime` tells them apart. The file may hold
 * the container's environment: it is written 0600 into the 0700 image directory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';

export const RECORD_FILE = 'ferry-container.json';
export const RECORD_FORMAT = 'ferry-container/1';

export function writeRecordFile(imagesDir: string, record: { format: typeof RECORD_FORMAT; runtime: RuntimeName }): string {
  const path = join(imagesDir, RECORD_FILE);
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/**
 * The parsed record in `imagesDir`, for the runtime's own checks; undefined when there is none. ERR_IMAGE_NOT_FOUND
 * when it cannot be read, ERR_IMAGE_CORRUPT when it is not JSON.
 */
export function readRecordFile(imagesDir: string): { path: string; value: Record<string, unknown> | null } | undefined {
  const path = join(imagesDir, RECORD_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { path, value: JSON.parse(text) as Record<string, unknown> | null };
  } catch (err) {
    throw new FerryError('ERR_IMAGE_CORRUPT', `${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Which runtime wrote the images in `imagesDir`, if ferry did. For the CLI's `restore` default. */
export function recordedRuntime(imagesDir: string): RuntimeName | undefined {
  try {
    const runtime = readRecordFile(imagesDir)?.value?.runtime;
    return runtime === 'runc' || runtime === 'lxc' || runtime === 'docker' ? runtime : undefined;
  } catch {
    return undefined;
  }
}
