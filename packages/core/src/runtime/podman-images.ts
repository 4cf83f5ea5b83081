/**
 * Podman's images for a migration (RuntimeImages): the destination must hold the image the container was made from,
 * since the restore lays the container's root filesystem over it. `podman save` / `podman load` of a docker-archive
 * tar, streamed through the migration's channel.
 */
import type { ContainerInfo } from '../model/container';
import type { PodmanCli } from './podman-cli';
import type { RuntimeImages } from './runtime-adapter';

export function podmanImages(podman: PodmanCli, timeoutMs: number): RuntimeImages {
  return {
    // By name where there is one: a `podman save` by id carries no tag, and the import looks the image up by name.
    imageOf: async (container: ContainerInfo) => {
      const inspect = await podman.inspect(container.ref.id);
      return inspect.ImageName || inspect.Image;
    },
    has: async (image) => (await podman.raw(['image', 'exists', '--', image])).exitCode === 0,
    save: (image, sink) => podman.stream(['save', '--format', 'docker-archive', '--', image], { sink }, timeoutMs),
    load: (tar) => podman.stream(['load', '--quiet'], { source: tar }, timeoutMs),
    remove: async (image) => {
      await podman.raw(['rmi', '--', image]);
    },
  };
}
