import { DEFAULT_DOCKER_HOST, DEFAULT_LXC_PATH, FERRY_STATE_DIR, createCriuClient, forgetStaleKdatCache, ensureStateDir, createRuntimeRegistry, parseNetnsUplink, type CriuClient, type RuntimeRegistry } from '@ferry/core';

/**
 * The runtimes and CRIU of this host, configured from the environment (only the CLI reads it). LXC containers are
 * looked for in `lxcPaths` (`ferry ps -P`), then in FERRY_LXC_PATH (colon-separated), then in LXC's default.
 */
export function runtimeRegistry(options: { lxcPaths?: readonly string[] } = {}): RuntimeRegistry {
  const uplink = process.env.FERRY_NETNS_UPLINK;
  const fromEnv = (process.env.FERRY_LXC_PATH ?? '').split(':').filter(Boolean);
  return createRuntimeRegistry({
    // The switch-over benchmark's comparisons, for a destination's agent: FERRY_PACKET_HOLD=off keeps a moved
    // container's uplink down until the commit instead of holding its packets; =restore holds them from the restore
    // on, not from the source's fence.
    runc: {
      searchPath: process.env.PATH,
      netnsUplink: uplink ? parseNetnsUplink(uplink) : undefined,
      packetHold: process.env.FERRY_PACKET_HOLD !== 'off',
      raiseAtFence: process.env.FERRY_PACKET_HOLD !== 'restore',
    },
    lxc: { searchPath: process.env.PATH, lxcPaths: [...(options.lxcPaths ?? []), ...fromEnv, DEFAULT_LXC_PATH] },
    // dockerd's socket: DOCKER_HOST as the docker CLI reads it, else Docker's default (/var/run/docker.sock).
    docker: { searchPath: process.env.PATH, dockerHost: process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST },
    // Podman reads its own configuration (containers.conf, storage.conf, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF).
    podman: { searchPath: process.env.PATH },
  });
}

export function criuClient(criuPath?: string): CriuClient {
  // A kernel-probe cache ferry kept from an earlier boot must not reach this command's CRIU (criu/kdat-cache.ts).
  forgetStaleKdatCache();
  return createCriuClient({ criuPath });
}

let stateDirReady: string | undefined;

/**
 * ferry's state directory: FERRY_STATE_DIR from the environment (tests, a second installation) or /var/lib/ferry,
 * made 0700 on first use (it holds images, bundles and records of what ferry moved).
 */
export function stateDir(): string {
  stateDirReady ??= ensureStateDir(process.env.FERRY_STATE_DIR || FERRY_STATE_DIR);
  return stateDirReady;
}
