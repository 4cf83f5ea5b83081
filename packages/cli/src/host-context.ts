import { DEFAULT_LXC_PATH, createCriuClient, createRuntimeRegistry, parseNetnsUplink, type CriuClient, type RuntimeRegistry } from '@ferry/core';

/**
 * The runtimes and CRIU of this host, configured from the environment (only the CLI reads it). LXC containers are
 * looked for in `lxcPaths` (`ferry ps -P`), then in FERRY_LXC_PATH (colon-separated), then in LXC's default.
 */
export function runtimeRegistry(options: { lxcPaths?: readonly string[] } = {}): RuntimeRegistry {
  const uplink = process.env.FERRY_NETNS_UPLINK;
  const fromEnv = (process.env.FERRY_LXC_PATH ?? '').split(':').filter(Boolean);
  return createRuntimeRegistry({
    runc: { searchPath: process.env.PATH, netnsUplink: uplink ? parseNetnsUplink(uplink) : undefined },
    lxc: { searchPath: process.env.PATH, lxcPaths: [...(options.lxcPaths ?? []), ...fromEnv, DEFAULT_LXC_PATH] },
  });
}

export function criuClient(criuPath?: string): CriuClient {
  return createCriuClient({ criuPath });
}
