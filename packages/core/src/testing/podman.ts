/**
 * Real Podman for integration tests, in a private storage root under a temporary directory, so the machine's own
 * Podman state (/var/lib/containers) is never touched and parallel tests never see each other's containers.
 * Flags from /work/shared/LAB.md: runc, cgroupfs, vfs, file events, explicit ulimits.
 *
 *   const pm = await createPodmanSandbox();
 *   await pm.importDir(rootfs, 'localhost/ferry-test:1');
 *   await pm.run(['run', '-d', ...PODMAN_RUN_FLAGS, 'localhost/ferry-test:1', ...]);
 *   ... pm.env has CONTAINERS_STORAGE_CONF, for code that runs `podman` on its own (ferry's import) ...
 *   await pm.cleanup();   // every container removed, the root deleted
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findExecutable } from '../host/find-executable';
import { DEFAULT_SEARCH_PATH } from '../runtime/adapter-options';

const run = promisify(execFile);

/** What every `podman run` in tests needs on this machine (no systemd, no networks, root without CAP_SYS_RESOURCE). */
export const PODMAN_RUN_FLAGS = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

export function podmanPath(): string | undefined {
  return findExecutable('podman', DEFAULT_SEARCH_PATH);
}

export interface PodmanSandbox {
  root: string;
  /** storage.conf naming the private root: `CONTAINERS_STORAGE_CONF` for podman commands run by other code. */
  storageConf: string;
  env: NodeJS.ProcessEnv;
  /** `podman GLOBAL-FLAGS ...args`; resolves to stdout, rejects with stderr. */
  run(args: string[]): Promise<string>;
  /** Imports a directory as a single-layer image (`tar | podman import`). */
  importDir(dir: string, image: string): Promise<void>;
  /** The image ferry's exported archives name by default: empty, root directory 0755. */
  importEmptyImage(image?: string): Promise<void>;
  pidOf(container: string): Promise<number>;
  cleanup(): Promise<void>;
}

export async function createPodmanSandbox(): Promise<PodmanSandbox> {
  const podman = podmanPath();
  if (!podman) throw new Error('podman is not installed; provision the host (scripts/provision-host.sh)');
  const root = mkdtempSync(join(tmpdir(), 'ferry-podman-'));
  const dirs = { graph: join(root, 'storage'), run: join(root, 'run'), tmp: join(root, 'tmp') };
  for (const d of Object.values(dirs)) mkdirSync(d, { mode: 0o700 });
  const storageConf = join(root, 'storage.conf');
  writeFileSync(storageConf, `[storage]\ndriver = "vfs"\nrunroot = "${dirs.run}"\ngraphroot = "${dirs.graph}"\n`);
  const global = ['--root', dirs.graph, '--runroot', dirs.run, '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--runtime', 'runc', '--events-backend', 'file', '--tmpdir', dirs.tmp];
  const env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf };
  const podmanRun = async (args: string[]): Promise<string> => {
    try {
      const { stdout } = await run(podman, [...global, ...args], { env, maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      throw new Error(`podman ${args.join(' ')} failed: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
    }
  };
  const importTar = (tarDir: string, image: string) =>
    new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-C', tarDir, '--numeric-owner', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const imp = spawn(podman, [...global, 'import', '-q', '-', image], { env, stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      imp.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      tar.stdout.pipe(imp.stdin);
      imp.on('error', reject);
      imp.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`podman import ${image} failed: ${stderr.trim()}`))));
    });
  return {
    root,
    storageConf,
    env,
    run: podmanRun,
    importDir: importTar,
    importEmptyImage: async (image = 'localhost/ferry-empty:latest') => {
      const empty = mkdtempSync(join(root, 'empty-'));
      try {
        await run('chmod', ['0755', empty]);
        await importTar(empty, image);
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    },
    pidOf: async (container) => Number((await podmanRun(['inspect', '--format', '{{.State.Pid}}', container])).trim()),
    cleanup: async () => {
      await podmanRun(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
      const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[4] ?? '')
        .filter((mountpoint) => mountpoint.startsWith(`${root}/`))
        .sort()
        .reverse();
      for (const mountpoint of mounted) await run('umount', ['-l', mountpoint]).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
