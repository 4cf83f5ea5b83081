/**
 * A Podman restore: Podman must own the restored container, and it restores foreign images only from a checkpoint
 * archive (`podman container restore --import`, the format of archive-layout.ts). So the received CRIU images, the
 * spec Podman ran the container with and its root filesystem are packed into that archive (uncompressed, in the
 * work directory) and imported under the container's name. Podman passes --tcp-established and --file-locks to
 * runc itself; it has no flag for external unix sockets or lazy pages (refused here).
 */
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfigDump, buildSpecDump } from '../archive/archive-layout';
import { writeArchive, type ArchiveMember } from '../archive/archive-tar';
import { FerryError } from '../model/ferry-error';
import { throwIfAborted, type Reverter } from './adapter-common';
import { readCheckpointRecord, RECORD_FILE, type CheckpointRecord } from './checkpoint-record';
import type { PodmanCli } from './podman-cli';
import type { RestorePlan } from './restore-pipeline';
import type { ToolOutcome } from './run-tool';
import type { RestoreOptions } from './runtime-adapter';
import type { OciConfig } from './runc-state';

/** The writable layer's tar in a Podman image directory (the whole rootfs, laid over the image on restore). */
export const PODMAN_ROOTFS_TAR = 'podman-rootfs.tar';
/** Files of the image directory that are ferry's, not CRIU's. */
const NOT_CRIU = new Set([RECORD_FILE, PODMAN_ROOTFS_TAR, 'dump.log', 'stats-dump', 'restore.log', 'lazy-status', 'podman-import.tar']);

export interface PodmanRestorePrep {
  archive: string;
}

export function refusePodmanRestoreOptions(options: RestoreOptions): void {
  if (options.lazyPages) {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Podman containers cannot be restored with lazy pages', {
      hint: "Podman's restore cannot pass --lazy-pages to CRIU; use --strategy stop-and-copy (auto picks it).",
    });
  }
  if (options.readdress && Object.keys(options.readdress).length > 0) {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Podman containers cannot be restored with new addresses', { hint: 'Podman assigns addresses itself; restore without --address.' });
  }
}

export function readPodmanRecord(imagesDir: string): CheckpointRecord<'podman'> {
  const record = readCheckpointRecord(imagesDir, 'podman');
  if (record) return record;
  throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} has no ${RECORD_FILE}: ferry cannot tell which Podman container to make`, {
    hint: 'Restore a directory written by `ferry checkpoint` of a Podman container (or a Podman archive with `ferry restore --import`).',
    details: { path: join(imagesDir, RECORD_FILE) },
  });
}

/**
 * `podman container restore --import ARCHIVE` with the dump's CRIU flags. The name comes from config.dump, not
 * `--name`: Podman 4.3 refuses --name together with --tcp-established.
 */
export function podmanRestoreArgs(archive: string, criu: RestorePlan<'podman'>['criu']): string[] {
  return ['container', 'restore', '--import', archive, ...(criu.tcpEstablished ? ['--tcp-established'] : []), ...(criu.fileLocks ? ['--file-locks'] : [])];
}

/** Writes the archive Podman imports (removed again after the restore, or by `revert` on failure). */
export async function writeImportArchive(plan: RestorePlan<'podman'>, revert: Reverter): Promise<PodmanRestorePrep> {
  if (plan.criu.extUnixSk) {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `Podman cannot restore ${plan.name} with external unix sockets`, {
      hint: 'Podman has no --ext-unix-sk; close the connection to the outside socket, or move the container with runc.',
    });
  }
  const archive = join(plan.workDir, 'podman-import.tar');
  revert.add(async () => rmSync(archive, { force: true }));
  const staged = (name: string) => {
    const path = join(plan.workDir, `podman-import.${name}`);
    revert.add(async () => rmSync(path, { force: true }));
    return path;
  };
  await writeArchive(archive, podmanArchiveMembers(plan.imagesDir, plan.name, plan.record!, staged, { tcpEstablished: plan.criu.tcpEstablished }));
  return { archive };
}

/**
 * The members of the checkpoint archive of a Podman image directory, as Podman's own `--export` lays them out:
 * config.dump and spec.dump (written to the paths `staged` names), no network, the writable layer as
 * rootfs-diff.tar, CRIU's images under checkpoint/. Shared by the restore (an import under `name`) and
 * `ferry checkpoint --export`.
 */
export function podmanArchiveMembers(
  imagesDir: string,
  name: string,
  record: CheckpointRecord<'podman'>,
  staged: (member: string) => string,
  options: { tcpEstablished: boolean },
): ArchiveMember[] {
  const { podman } = record;
  const at = new Date(record.checkpointedAt);
  const spec = options.tcpEstablished ? withLoopbackUp(buildSpecDump(podman.spec)) : buildSpecDump(podman.spec);
  const config = buildConfigDump({ name, spec, rootfsImage: podman.imageName ?? podman.imageId, ownNetns: false, createdAt: at, checkpointedAt: at });
  const members: ArchiveMember[] = [];
  const json = (member: string, value: unknown) => {
    const path = staged(member);
    writeFileSync(path, `${JSON.stringify(value)}\n`, { mode: 0o600 });
    members.push({ name: member, path });
  };
  json('config.dump', config);
  json('spec.dump', spec);
  json('network.status', null);
  const tar = join(imagesDir, PODMAN_ROOTFS_TAR);
  if (existsSync(tar)) members.push({ name: 'rootfs-diff.tar', path: tar });
  for (const file of readdirSync(imagesDir).sort()) {
    if (NOT_CRIU.has(file) || !statSync(join(imagesDir, file)).isFile()) continue;
    members.push({ name: `checkpoint/${file}`, path: join(imagesDir, file) });
  }
  return members;
}

/**
 * The restore's network namespace is Podman's, made anew, and Podman leaves its `lo` down until the container runs:
 * CRIU then cannot re-create a TCP connection on 127.0.0.1 ("Can't connect inet socket back: Network is unreachable"
 * in restore.log, which Podman shows only as "criu failed: type NOTIFY" and deletes unless `--keep`). runc runs the
 * spec's prestart hooks when CRIU has made the namespaces and before it restores the sockets (its setup-namespaces
 * notification), with the restored init's pid in the state on stdin: this hook brings `lo` up there. Idempotent, and
 * a fixed command: nothing of the container's goes into it.
 */
export const LOOPBACK_UP_HOOK = {
  path: '/bin/sh',
  args: ['sh', '-c', 'read -r state; pid=$(printf "%s" "$state" | sed -n \'s/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p\'); [ -n "$pid" ] && exec nsenter -t "$pid" -n ip link set lo up'],
  env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
};

function withLoopbackUp(spec: OciConfig): OciConfig {
  const hooks = (spec.hooks ?? {}) as Record<string, unknown[] | undefined>;
  return { ...spec, hooks: { ...hooks, prestart: [LOOPBACK_UP_HOOK, ...(hooks.prestart ?? [])] } };
}

export async function podmanImport(podman: PodmanCli, prep: PodmanRestorePrep, plan: RestorePlan<'podman'>, timeoutMs: number): Promise<ToolOutcome> {
  throwIfAborted(plan.options.signal, `restore of ${plan.name}`);
  const args = podmanRestoreArgs(prep.archive, plan.criu);
  const run = await podman.raw(args, timeoutMs, plan.options.signal);
  const ok = run.exitCode === 0 && !run.timedOut && !run.aborted;
  // Podman removes the container it created when its restore failed; a killed podman may leave it: the undo removes it.
  const errorText = run.stderr
    .split('\n')
    .map((l) => l.replace(/^Error: /, '').trim())
    .filter((l) => l !== '' && !/level=(warning|info)/.test(l))
    .join('\n');
  return { args: podman.argv(args), exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr, errorText, timedOut: run.timedOut, aborted: run.aborted, durationMs: run.durationMs, ok };
}
