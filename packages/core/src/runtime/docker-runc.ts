/**
 * What ferry reads of a Docker container through the runc that runs it: Docker's runc state root for the container
 * (ferry dumps with runc directly, see docker-adapter.ts), and the container's writable layer as runc sees its root
 * filesystem.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../model/ferry-error';
import type { RecordExtras } from './checkpoint-record';
import type { DockerClient } from './docker-client';
import { diffEntriesOf, nameOf, rootfsChangesToCarry, type DockerInspect } from './docker-config';
import type { RuncCli } from './runc-cli';

const run = promisify(execFile);

/** Docker's exec root by default; its runc keeps state in EXEC_ROOT/runtime-runc/moby. */
const DEFAULT_EXEC_ROOT = '/run/docker';
const RUNC_STATE_SUBDIR = join('runtime-runc', 'moby');
/** The container's writable layer changes, next to the images. */
const ROOTFS_CHANGES_TAR = 'ferry-rootfs-changes.tar';

/**
 * Docker's runc state root for this container: `given` when set, else derived from the containerd shim that parents
 * the container's init (`-address EXEC_ROOT/containerd/containerd.sock`), else Docker's default. The one chosen must
 * hold the container's state.json: runc would otherwise act on nothing (or on another daemon's).
 */
export function runcRootOf(inspect: DockerInspect, given: string | undefined): string {
  const candidates: string[] = [];
  if (given) candidates.push(given);
  const execRoot = execRootOfShim(inspect.State.Pid);
  if (execRoot) candidates.push(join(execRoot, RUNC_STATE_SUBDIR));
  candidates.push(join(DEFAULT_EXEC_ROOT, RUNC_STATE_SUBDIR));
  const found = candidates.find((root) => existsSync(join(root, inspect.Id, 'state.json')));
  if (!found) {
    throw new FerryError('ERR_RUNTIME_FAILED', `cannot find runc's state of docker container ${nameOf(inspect)} (looked in ${candidates.join(', ')})`, {
      hint: "ferry must run on the Docker host itself; pass the daemon's runc root (EXEC_ROOT/runtime-runc/moby) if it is elsewhere.",
      details: { candidates },
    });
  }
  return found;
}

/** EXEC_ROOT of the daemon whose shim parents `pid`, from the shim's `-address` argument. */
function execRootOfShim(pid: number): string | undefined {
  if (!pid) return undefined;
  try {
    const ppid = /^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    if (!ppid) return undefined;
    const argv = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    const at = argv.indexOf('-address');
    const address = at >= 0 ? argv[at + 1] : undefined;
    // EXEC_ROOT/containerd/containerd.sock
    return address?.endsWith('/containerd.sock') ? dirname(dirname(address)) : undefined;
  } catch {
    return undefined;
  }
}

type RootfsChanges = NonNullable<RecordExtras['docker']['docker']['rootfsChanges']>;

/**
 * What the container changed in its own filesystem (`docker diff`), as a tar next to the images: a restore on another
 * host starts from the image alone, and CRIU refuses to restore a process whose open file is missing or has another
 * size. Read from the container's rootfs as runc sees it. Left out: Docker's own bind mounts (/etc/hosts,
 * /etc/hostname, /etc/resolv.conf), mounts (tmpfs contents travel in CRIU's images), /dev, /proc and /sys. Deletions
 * of files that come from the image are listed, not replayed (Docker has no API for it).
 */
export async function saveRootfsChanges(
  docker: DockerClient,
  inspect: DockerInspect,
  cli: RuncCli,
  imagesDir: string,
  tools: { tarPath: string; commandTimeoutMs: number },
): Promise<RootfsChanges> {
  const name = nameOf(inspect);
  const changes = diffEntriesOf(await docker.call(`diff ${name}`, (d) => d.getContainer(inspect.Id).changes(), name));
  const mounts = [...(inspect.Mounts ?? []).map((m) => m.Destination), ...Object.keys((inspect.HostConfig as { Tmpfs?: Record<string, string> }).Tmpfs ?? {})];
  const { carried, deleted } = rootfsChangesToCarry(changes, mounts);
  const result = { tar: ROOTFS_CHANGES_TAR, files: carried.length, deleted };
  if (carried.length === 0) return result;
  const state = await cli.run(['state', inspect.Id], { timeoutMs: tools.commandTimeoutMs });
  const rootfs = state.ok ? (JSON.parse(state.stdout) as { rootfs?: string }).rootfs : undefined;
  if (!rootfs) throw new FerryError('ERR_RUNTIME_FAILED', `cannot find the root filesystem of docker container ${name}`, { hint: 'Check `runc state` of the container.' });
  const list = join(imagesDir, `${ROOTFS_CHANGES_TAR}.list`);
  writeFileSync(list, carried.map((p) => `.${p}`).join('\0'), { mode: 0o600 });
  try {
    await run(tools.tarPath, ['-C', rootfs, '--no-recursion', '--null', '-T', list, '--numeric-owner', '-cf', join(imagesDir, ROOTFS_CHANGES_TAR)]);
    chmodSync(join(imagesDir, ROOTFS_CHANGES_TAR), 0o600);
  } catch (err) {
    throw new FerryError('ERR_RUNTIME_FAILED', `cannot save the writable layer of docker container ${name}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, {
      hint: 'Check free space in the image directory.',
      cause: err,
    });
  } finally {
    rmSync(list, { force: true });
  }
  return result;
}
