import { DEFAULT_DOCKER_HOST, createCriuClient, createRuntimeRegistry, parseNetnsUplink, type CriuClient, type RuntimeRegistry } from '@ferry/core';

/** The runtimes and CRIU of this host, configured from the environment (only the CLI reads it). */
export function runtimeRegistry(): RuntimeRegistry {
  const uplink = process.env.FERRY_NETNS_UPLINK;
  return createRuntimeRegistry({
    runc: { searchPath: process.env.PATH, netnsUplink: uplink ? parseNetnsUplink(uplink) : undefined },
    // dockerd's socket: DOCKER_HOST as the docker CLI reads it, else Docker's default (/var/run/docker.sock).
    docker: { searchPath: process.env.PATH, dockerHost: process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST },
  });
}

export function criuClient(criuPath?: string): CriuClient {
  return createCriuClient({ criuPath });
}
