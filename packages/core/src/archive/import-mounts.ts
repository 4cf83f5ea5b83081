/**
 * Which bind mounts of an imported spec.dump get new sources, decided without touching the disk (unit-tested).
 *
 * CRIU restores a container's mount tree from its images, but a bind mount from the host is external to it: runc hands
 * CRIU the source for each bind mount in config.json, and the restore fails without one. Podman's containers bind its
 * per-container files (/etc/hosts, /etc/hostname, /etc/resolv.conf, /run/.containerenv, /dev/shm, /run/secrets) from
 * its storage, which does not travel: like Podman's own import, ferry makes fresh ones (in the import's userdata/),
 * fills /dev/shm from devshm-checkpoint.tar and named volumes from volumes/NAME.tar. Any other bind mount keeps its
 * source, which must exist on this host.
 */
import { join } from 'node:path';
import { isBindMount, type OciConfig } from '../runtime/runc-state';
import { DEVSHM_TAR, type ConfigDump } from './archive-layout';

export type MountSource =
  | { kind: 'file'; path: string; content: string }
  | { kind: 'dir'; path: string; mode: number; tar?: string };

/** New sources by mount destination. */
export type MountSources = Map<string, MountSource>;

export interface ImportMountsInput {
  spec: OciConfig;
  config: Pick<ConfigDump, 'name' | 'namedVolumes'>;
  sourceExists: (path: string) => boolean;
  /** Where the new files go (the import's userdata/). */
  userdata: string;
  /** Where the archive's volumes/NAME.tar were unpacked. */
  volumesDir: string;
  /** The unpacked archive's directory, for devshm-checkpoint.tar. */
  archiveDir: string;
  /** This host's /etc/resolv.conf, which Podman copies too. */
  hostResolvConf: string;
}

const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function planImportMounts(input: ImportMountsInput): { sources: MountSources; missing: string[] } {
  const sources: MountSources = new Map();
  const missing: string[] = [];
  const hostname = input.spec.hostname ?? input.config.name;
  const podmanFiles: Record<string, MountSource> = {
    '/etc/hosts': { kind: 'file', path: join(input.userdata, 'hosts'), content: `127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t${hostname}\n` },
    '/etc/hostname': { kind: 'file', path: join(input.userdata, 'hostname'), content: `${hostname}\n` },
    '/etc/resolv.conf': { kind: 'file', path: join(input.userdata, 'resolv.conf'), content: input.hostResolvConf },
    '/run/.containerenv': { kind: 'file', path: join(input.userdata, 'containerenv'), content: '' },
    '/dev/shm': { kind: 'dir', path: join(input.userdata, 'shm'), mode: 0o1777, tar: join(input.archiveDir, DEVSHM_TAR) },
    '/run/secrets': { kind: 'dir', path: join(input.userdata, 'secrets'), mode: 0o755 },
  };
  for (const mount of input.spec.mounts ?? []) {
    if (!isBindMount(mount)) continue;
    const podman = podmanFiles[mount.destination];
    if (podman) {
      sources.set(mount.destination, podman);
      continue;
    }
    const volume = (input.config.namedVolumes ?? []).find((v) => v.dest === mount.destination);
    if (volume && VOLUME_NAME.test(volume.volumeName)) {
      sources.set(mount.destination, {
        kind: 'dir',
        path: join(input.userdata, 'volumes', volume.volumeName),
        mode: 0o755,
        tar: join(input.volumesDir, `${volume.volumeName}.tar`),
      });
      continue;
    }
    if (!mount.source || !input.sourceExists(mount.source)) missing.push(`${mount.source ?? '(no source)'} -> ${mount.destination}`);
  }
  return { sources, missing };
}
