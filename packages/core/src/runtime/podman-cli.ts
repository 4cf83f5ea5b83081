/**
 * Podman through its CLI, always with argument arrays (never a shell). Podman is daemonless: every call is one
 * `podman` process that reads the host's containers.conf and storage.conf (or CONTAINERS_CONF and
 * CONTAINERS_STORAGE_CONF from the environment), plus the global flags the adapter was given (`--root`,
 * `--runroot`, ... for a private storage). The parsers are pure and unit tested (podman-cli.test.ts).
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { ContainerInfo, ContainerState } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { runTool, type ToolRun } from './run-tool';

export interface PodmanCliOptions {
  podmanPath: string;
  /** Global flags before every subcommand (e.g. --root, --runroot, --storage-driver, --cgroup-manager). */
  podmanArgs: readonly string[];
  /** Environment of podman (default: inherited), e.g. CONTAINERS_STORAGE_CONF. */
  env?: NodeJS.ProcessEnv;
  commandTimeoutMs: number;
}

/** The fields of `podman container inspect --format json` ferry reads. */
export interface PodmanInspect {
  Id: string;
  Name: string;
  Created?: string;
  Image: string;
  ImageName?: string;
  OCIRuntime?: string;
  OCIConfigPath?: string;
  State: { Status: string; Running?: boolean; Paused?: boolean; Pid?: number };
  Config?: { Tty?: boolean };
  HostConfig?: { NetworkMode?: string };
  Mounts?: { Type?: string; Source?: string; Destination?: string }[];
}

/** A listed container of `podman ps -a --format json`. */
interface PodmanPsEntry {
  Id?: string;
  Names?: string[];
  State?: string;
  Pid?: number;
  Created?: number;
}

export function podmanState(status: string | undefined): ContainerState {
  switch (status) {
    case 'running':
      return 'running';
    case 'paused':
      return 'paused';
    case 'created':
    case 'configured':
      return 'created';
    case 'exited':
    case 'stopped':
      return 'stopped';
    default:
      return 'unknown';
  }
}

/** `podman ps -a --format json` as ContainerInfos (named by their first name). */
export function parsePodmanPs(stdout: string): ContainerInfo[] {
  const entries = JSON.parse(stdout.trim() || '[]') as PodmanPsEntry[];
  if (!Array.isArray(entries)) throw new Error('podman ps did not print a JSON list');
  return entries
    .filter((e) => typeof e.Names?.[0] === 'string')
    .map((e) => ({
      ref: { runtime: 'podman' as const, id: e.Names![0]! },
      state: podmanState(e.State),
      ...(e.Pid ? { pid: e.Pid } : {}),
      ...(e.Created ? { createdAt: new Date(e.Created * 1000).toISOString() } : {}),
    }));
}

/** `podman container inspect --format json NAME` (a list of one). */
export function parsePodmanInspect(stdout: string): PodmanInspect {
  const list = JSON.parse(stdout) as PodmanInspect[];
  const first = Array.isArray(list) ? list[0] : undefined;
  if (!first || typeof first.Id !== 'string' || typeof first.State?.Status !== 'string') throw new Error('podman inspect printed no container');
  return first;
}

export function containerInfoOfPodman(inspect: PodmanInspect): ContainerInfo {
  const pid = inspect.State.Pid;
  return {
    ref: { runtime: 'podman', id: inspect.Name },
    state: podmanState(inspect.State.Status),
    ...(pid ? { pid } : {}),
    ...(inspect.Created ? { createdAt: inspect.Created } : {}),
  };
}

/** Podman's "no such container" in its many wordings. */
export function isNoSuchContainer(stderr: string): boolean {
  return /no such container|no container with name or ID/i.test(stderr);
}

export class PodmanCli {
  constructor(readonly options: PodmanCliOptions) {}

  /** The argv podman gets for `args` (global flags first). */
  argv(args: readonly string[]): string[] {
    return [...this.options.podmanArgs, ...args];
  }

  /** Runs podman; resolves with its run whatever the exit code. ERR_RUNTIME_UNAVAILABLE when it cannot start. */
  raw(args: readonly string[], timeoutMs = this.options.commandTimeoutMs, signal?: AbortSignal): Promise<ToolRun> {
    return runTool(this.options.podmanPath, this.argv(args), { timeoutMs, ...(signal ? { signal } : {}), ...(this.options.env ? { env: this.options.env } : {}) }, (err) =>
      new FerryError('ERR_RUNTIME_UNAVAILABLE', `cannot run podman (${this.options.podmanPath}): ${err.message}`, { hint: 'Install Podman (`apt-get install podman`); `ferry doctor` checks the host.', cause: err }),
    );
  }

  /** Runs podman; resolves with stdout, throws ERR_RUNTIME_NOT_FOUND (no such container `id`) or ERR_RUNTIME_FAILED. */
  async call(args: readonly string[], id?: string, timeoutMs?: number): Promise<string> {
    const run = await this.raw(args, timeoutMs);
    if (run.exitCode === 0) return run.stdout;
    const text = run.stderr.trim() || (run.timedOut ? `timed out after ${run.durationMs} ms` : `exit ${run.exitCode}`);
    if (id !== undefined && isNoSuchContainer(text)) {
      throw new FerryError('ERR_RUNTIME_NOT_FOUND', `podman has no container ${id}`, { hint: 'List the containers with `ferry ps`.', details: { id } });
    }
    throw new FerryError('ERR_RUNTIME_FAILED', `podman ${args[0] ?? ''} ${args[1] ?? ''} failed: ${text}`.replace(/\s+/g, ' '), {
      hint: 'Check the container with `podman ps -a`; `ferry doctor` checks the host.',
      details: { args: this.argv(args), exitCode: run.exitCode },
    });
  }

  async inspect(id: string): Promise<PodmanInspect> {
    return parsePodmanInspect(await this.call(['container', 'inspect', '--format', 'json', '--', id], id));
  }

  async exists(name: string): Promise<boolean> {
    return (await this.raw(['container', 'exists', '--', name])).exitCode === 0;
  }

  /** Pipes `podman ARGS` stdout into `sink` (left open) or `source` into its stdin; rejects when podman fails. */
  stream(args: readonly string[], io: { sink?: Writable; source?: Readable }, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.podmanPath, this.argv(args), { stdio: [io.source ? 'pipe' : 'ignore', io.sink ? 'pipe' : 'ignore', 'pipe'], ...(this.options.env ? { env: this.options.env } : {}) });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      if (io.sink) child.stdout!.pipe(io.sink, { end: false });
      if (io.source) io.source.pipe(child.stdin!);
      child.on('error', (err) => (clearTimeout(timer), reject(err)));
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new FerryError('ERR_RUNTIME_FAILED', `podman ${args.join(' ')} failed: ${stderr.trim() || `exit ${code}`}`, { hint: 'Check the images with `podman images`.' }));
      });
    });
  }
}
