/**
 * Where an LXC restore goes: LXCPATH/NAME must hold the container's directory (config and rootfs) before
 * `lxc-checkpoint -r`. It is the stopped container's own (a checkpoint without leaveRunning keeps it), the bundle
 * given (a migration's copy, moved into place), or a copy of the checkpointed container's directory under a new
 * name; config values that named the old directory are pointed at the new one. A directory put into place is
 * removed again when the restore fails.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FerryError } from '../model/ferry-error';
import type { Reverter } from './adapter-common';
import type { CheckpointRecord } from './checkpoint-record';
import type { Located } from './lxc-containers';
import { rewriteConfigPaths } from './lxc-config';

export interface LxcPlacement {
  name: string;
  record: CheckpointRecord<'lxc'> | undefined;
  bundle: string | undefined;
  /** This host's lxcpaths, the first being where restores without a known lxcpath go. */
  lxcPaths: readonly string[];
  /** liblxc's state word for a container that exists at the target already. */
  stateOf(where: Located): Promise<string>;
}

/** Settles LXCPATH/NAME for the restore (see the header); registers the removal of a directory it placed. */
export async function placeContainerDir(p: LxcPlacement, revert: Reverter): Promise<Located> {
  const { name, record } = p;
  const bundle = p.bundle === undefined ? undefined : resolve(p.bundle);
  // In place when the checkpointed container is still defined here (a `checkpoint` without leaveRunning);
  // otherwise into the recorded lxcpath when this host searches it, else into this host's first lxcpath.
  const inPlace = bundle === undefined && record !== undefined && record.id === name && existsSync(join(record.containerDir, 'config'));
  const lxcpath = inPlace || (record && p.lxcPaths.includes(record.lxcpath)) ? record!.lxcpath : p.lxcPaths[0]!;
  const where: Located = { lxcpath, name, dir: join(lxcpath, name) };
  const target = where.dir;
  if (existsSync(join(target, 'config'))) {
    if ((bundle !== undefined && bundle !== target) || (await p.stateOf(where)) !== 'STOPPED') throw nameTaken(name, target);
    return where;
  }
  const source = bundle ?? (record && record.id !== name ? record.containerDir : undefined);
  if (source === undefined || !existsSync(join(source, 'config'))) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no LXC container directory to restore ${name} into (${target} does not exist)`, {
      hint: 'Pass --bundle with a copy of the container directory (config and rootfs).',
      details: { target, bundle: source },
    });
  }
  if (existsSync(target)) throw nameTaken(name, target);
  mkdirSync(lxcpath, { recursive: true, mode: 0o755 });
  revert.add(() => rmSync(target, { recursive: true, force: true }));
  try {
    if (bundle !== undefined) moveDir(bundle, target);
    else cpSync(source, target, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    const oldDir = record?.containerDir ?? source;
    if (oldDir !== target) rewriteConfigPaths(join(target, 'config'), oldDir, target);
  } catch (err) {
    throw new FerryError('ERR_RUNTIME_FAILED', `cannot put the container directory into ${target}: ${(err as Error).message}`, {
      hint: 'Check free space and permissions in the lxcpath.',
      cause: err,
    });
  }
  return where;
}

function nameTaken(name: string, dir: string): FerryError {
  return new FerryError('ERR_RUNTIME_NAME_TAKEN', `LXC already has a container named ${name} (${dir})`, {
    hint: `Restore under another name (--name), or remove it first (\`lxc-destroy -f -n ${name}\`).`,
    details: { name, dir },
  });
}

/** Moves a directory into place: a rename where possible, a copy and delete across filesystems. */
function moveDir(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    rmSync(from, { recursive: true, force: true });
  }
}
