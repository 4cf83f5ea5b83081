/**
 * Replicas kept on a standby host: STATE/replicas/NAME/ holds complete rounds and at most a few incoming ones.
 *
 *   incoming-ROUND/   being received (bundle/, images/); removed if the round fails
 *   SEQ-ROUND/        complete: bundle/, images/, replica.json
 *   current -> SEQ-ROUND   switched atomically once a new round is complete; then older rounds are removed
 *
 * So the previous good copy is there until the new one is whole, and a failover always finds a complete copy.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, imageDirBytes, type RuntimeName } from '@ferry/core';

export interface ReplicaMeta {
  container: string;
  runtime: RuntimeName;
  roundId: string;
  sourceHost: string;
  takenAt: string;
  frozenMs: number;
  bytes: number;
  /** Always "full" today: incremental rounds need memory tracking (soft-dirty) on the primary. */
  kind: 'full' | 'incremental';
}

export interface Replica {
  dir: string;
  meta: ReplicaMeta;
  diskBytes: number;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_+.-]*$/;

export class ReplicaStore {
  constructor(readonly root: string) {}

  private containerDir(name: string): string {
    if (!NAME.test(name)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${name}" is not a container name`);
    return join(this.root, name);
  }

  /** Creates incoming-ROUND with bundle/ and images/ (0700) and returns it. */
  beginRound(name: string, roundId: string): string {
    const dir = join(this.containerDir(name), `incoming-${roundId}`);
    mkdirSync(this.containerDir(name), { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 }); // new or nothing: an abort of this round deletes it
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new FerryError('ERR_AGENT_PROTOCOL', `replica round ${roundId} of ${name} already exists on this host`, { hint: 'Every round needs a new ID.' });
    }
    for (const sub of ['bundle', 'images', 'work']) mkdirSync(join(dir, sub), { mode: 0o700 });
    return dir;
  }

  /** Turns incoming-ROUND into the current replica, then removes every older round. */
  completeRound(name: string, roundId: string, meta: ReplicaMeta): Replica {
    const base = this.containerDir(name);
    const incoming = join(base, `incoming-${roundId}`);
    if (!existsSync(incoming)) throw new FerryError('ERR_AGENT_PROTOCOL', `no incoming replica round ${roundId} for ${name}`);
    writeFileSync(join(incoming, 'replica.json'), JSON.stringify(meta, null, 2), { mode: 0o600 });
    const seq = String(this.rounds(name).reduce((max, r) => Math.max(max, Number(r.split('-')[0])), 0) + 1).padStart(6, '0');
    const final = `${seq}-${roundId}`;
    renameSync(incoming, join(base, final));
    // Atomic switch: a new link under a temporary name renamed over `current`.
    const tmp = join(base, `.current-${roundId}`);
    symlinkSync(final, tmp);
    renameSync(tmp, join(base, 'current'));
    for (const old of this.rounds(name)) if (old !== final) rmSync(join(base, old), { recursive: true, force: true });
    return this.current(name)!;
  }

  current(name: string): Replica | undefined {
    const link = join(this.containerDir(name), 'current');
    let target: string;
    try {
      target = readlinkSync(link);
    } catch {
      return undefined;
    }
    const corrupt = (why: string) =>
      new FerryError('ERR_STATE_CORRUPT', `the replica of ${name} in ${this.containerDir(name)} cannot be used: ${why}`, {
        hint: 'Move that directory aside; the next replication round writes a new replica.',
        details: { dir: this.containerDir(name) },
      });
    if (!/^\d{6}-[A-Za-z0-9-]+$/.test(target)) throw corrupt(`'current' points at ${JSON.stringify(target)}, not at a round`);
    const dir = join(this.containerDir(name), target);
    let meta: ReplicaMeta;
    try {
      meta = JSON.parse(readFileSync(join(dir, 'replica.json'), 'utf8')) as ReplicaMeta;
    } catch (err) {
      throw corrupt(`replica.json: ${(err as Error).message}`);
    }
    if (typeof meta !== 'object' || meta === null || typeof meta.takenAt !== 'string' || typeof meta.runtime !== 'string' || typeof meta.roundId !== 'string') {
      throw corrupt('replica.json lacks takenAt, runtime or roundId');
    }
    return { dir, meta, diskBytes: 0 };
  }

  /** Every container with a current replica here. */
  async list(): Promise<Replica[]> {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return [];
    }
    const out: Replica[] = [];
    for (const name of names.sort()) {
      const replica = NAME.test(name) ? this.current(name) : undefined;
      if (replica) out.push({ ...replica, diskBytes: await imageDirBytes(replica.dir) });
    }
    return out;
  }

  private rounds(name: string): string[] {
    try {
      return readdirSync(this.containerDir(name)).filter((d) => /^\d{6}-/.test(d)).sort();
    } catch {
      return [];
    }
  }
}
