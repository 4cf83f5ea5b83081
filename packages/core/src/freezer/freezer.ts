/**
 * The cgroup freezer, for v1 (freezer.state) and v2 (cgroup.freeze / cgroup.events), on hybrid hosts either.
 *
 * Contract: freeze() resolves once every task in the cgroup is frozen; if that does not happen within timeoutMs it
 * thaws the cgroup again and throws ERR_FREEZER_TIMEOUT, so a failed freeze never leaves a half-frozen container.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../model/ferry-error';

export type FreezerKind = 'v1' | 'v2';
export type FreezerState = 'thawed' | 'freezing' | 'frozen';

export const DEFAULT_FREEZE_TIMEOUT_MS = 5_000;
const POLL_MS = 2;

export class Freezer {
  /** @param path the cgroup directory (v1: under the freezer hierarchy; v2: under the unified hierarchy). */
  constructor(
    readonly path: string,
    readonly kind: FreezerKind,
  ) {}

  /** Picks v1 when the directory has freezer.state, v2 when it has cgroup.freeze. */
  static at(path: string): Freezer {
    if (existsSync(join(path, 'freezer.state'))) return new Freezer(path, 'v1');
    if (existsSync(join(path, 'cgroup.freeze'))) return new Freezer(path, 'v2');
    throw new FerryError('ERR_FREEZER_UNAVAILABLE', `no cgroup freezer at ${path}`, {
      hint: 'The container must run in its own cgroup with the freezer (v1) or on cgroup v2; see `ferry doctor`.',
    });
  }

  state(): FreezerState {
    if (this.kind === 'v1') {
      const text = this.read('freezer.state').trim();
      return text === 'FROZEN' ? 'frozen' : text === 'FREEZING' ? 'freezing' : 'thawed';
    }
    const wanted = this.read('cgroup.freeze').trim() === '1';
    const frozen = /^frozen 1$/m.test(this.read('cgroup.events'));
    return frozen ? 'frozen' : wanted ? 'freezing' : 'thawed';
  }

  async freeze(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    this.write(this.kind === 'v1' ? 'freezer.state' : 'cgroup.freeze', this.kind === 'v1' ? 'FROZEN' : '1');
    for (;;) {
      if (this.state() === 'frozen') return;
      if (options.signal?.aborted || Date.now() > deadline) {
        this.thaw();
        if (options.signal?.aborted) throw new FerryError('ERR_ABORTED', `freezing ${this.path} interrupted; thawed again`);
        throw new FerryError('ERR_FREEZER_TIMEOUT', `cgroup ${this.path} did not freeze within ${timeoutMs} ms; thawed again`, {
          hint: 'A task may be stuck in uninterruptible sleep (D state, e.g. on NFS); check `ps -o stat` and retry.',
        });
      }
      // v1 needs the write repeated to make progress on tasks that were busy in the kernel.
      if (this.kind === 'v1') this.write('freezer.state', 'FROZEN');
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  thaw(): void {
    this.write(this.kind === 'v1' ? 'freezer.state' : 'cgroup.freeze', this.kind === 'v1' ? 'THAWED' : '0');
  }

  private read(file: string): string {
    try {
      return readFileSync(join(this.path, file), 'utf8');
    } catch (err) {
      throw this.failure(`cannot read ${file}`, err);
    }
  }

  private write(file: string, value: string): void {
    try {
      writeFileSync(join(this.path, file), value);
    } catch (err) {
      throw this.failure(`cannot write ${value} to ${file}`, err);
    }
  }

  private failure(what: string, cause: unknown): FerryError {
    return new FerryError('ERR_FREEZER_FAILED', `freezer ${this.path}: ${what}: ${(cause as Error).message}`, {
      hint: 'Check that the cgroup still exists and that ferry runs as root.',
      cause,
    });
  }
}

/** The freezer cgroup of a process, from /proc/PID/cgroup and the host's mount points. */
export function freezerForPid(pid: number, mounts: { v1Freezer?: string; v2?: string }): Freezer {
  const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  for (const line of text.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    if (mounts.v1Freezer && controllers.split(',').includes('freezer')) return Freezer.at(join(mounts.v1Freezer, path));
  }
  for (const line of text.split('\n')) {
    const [hierarchy, controllers, path] = line.split(':');
    if (hierarchy === '0' && controllers === '' && path !== undefined && mounts.v2) return Freezer.at(join(mounts.v2, path));
  }
  throw new FerryError('ERR_FREEZER_UNAVAILABLE', `process ${pid} has no freezer cgroup`, {
    hint: 'Run the workload in its own cgroup (containers do).',
  });
}
