/**
 * An in-memory runtime adapter for unit tests of code built on RuntimeAdapter (snapshots, start from image): no
 * runc, no CRIU. checkpoint() writes a small fake image directory (inventory.img, a pages file, the runc record);
 * restore() checks it and "runs" a container with a new pid. Every call is noted in `calls`; failures are injected
 * with failCheckpoint / failRestore / failRemove.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ContainerInfo, ContainerRef } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { RECORD_FILE, RECORD_FORMAT, type CheckpointRecord } from '../runtime/checkpoint-record';
import { asFence, type Fence, type FenceRecord } from '../runtime/network-fence';
import type { OciConfig } from '../runtime/runc-state';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, RestoreResult, RuntimeAdapter, RuntimeAvailability } from '../runtime/runtime-adapter';

export interface FakeCall {
  op: 'checkpoint' | 'restore' | 'remove' | 'pause' | 'resume' | 'fence' | 'unfence';
  id?: string;
  options?: CheckpointOptions | RestoreOptions;
}

export class FakeRuntime implements RuntimeAdapter {
  readonly name = 'runc' as const;
  readonly containers = new Map<string, ContainerInfo>();
  readonly calls: FakeCall[] = [];
  /** Bytes of the fake pages file a checkpoint writes (a parent image halves it). */
  pageBytes = 64 * 1024;
  failCheckpoint: FerryError | undefined;
  failRestore: FerryError | undefined;
  failRemove: FerryError | undefined;
  private nextPid = 1000;
  private clock = 0;

  /** A running container named `id` in the network namespace at netnsPath (any existing file stands in for one). */
  add(id: string, netnsPath?: string): ContainerInfo {
    const info: ContainerInfo = {
      ref: { runtime: 'runc', id },
      state: 'running',
      pid: this.nextPid++,
      bundle: `/bundles/${id}`,
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, this.clock++)).toISOString(),
      ...(netnsPath ? { netns: { path: netnsPath, addresses: [] } } : {}),
    };
    this.containers.set(id, info);
    return info;
  }

  async availability(): Promise<RuntimeAvailability> {
    return { usable: true };
  }

  async list(): Promise<ContainerInfo[]> {
    return [...this.containers.values()].map((c) => structuredClone(c));
  }

  async inspect(id: string): Promise<ContainerInfo> {
    const c = this.containers.get(id);
    if (!c) throw new FerryError('ERR_RUNTIME_NOT_FOUND', `runc has no container named ${id}`, { hint: 'Run `ferry ps`.' });
    return structuredClone(c);
  }

  async preflight(): Promise<void> {}

  async checkpoint(ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
    this.calls.push({ op: 'checkpoint', id: ref.id, options });
    const c = await this.inspect(ref.id);
    if (this.failCheckpoint) throw this.failCheckpoint;
    const dir = resolve(options.imagesDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pages = options.parentImage ? this.pageBytes / 2 : this.pageBytes;
    writeFileSync(join(dir, 'inventory.img'), Buffer.alloc(64, 1));
    writeFileSync(join(dir, 'pages-1.img'), Buffer.alloc(pages, 7));
    const config: OciConfig = {
      root: { path: 'rootfs' },
      linux: { namespaces: [{ type: 'pid' }, ...(c.netns?.path ? [{ type: 'network', path: c.netns.path }] : [])] },
    };
    const record: CheckpointRecord<'runc'> = {
      format: RECORD_FORMAT,
      runtime: 'runc',
      id: ref.id,
      bundle: c.bundle ?? '/bundles/unknown',
      config,
      ...(c.netns?.path ? { netns: { path: c.netns.path, interfaces: [] } } : {}),
      criu: { tcpEstablished: options.tcpEstablished === true, fileLocks: options.fileLocks === true, extUnixSk: false, leaveRunning: options.leaveRunning === true },
      checkpointedAt: new Date().toISOString(),
    };
    writeFileSync(join(dir, RECORD_FILE), JSON.stringify(record), { mode: 0o600 });
    if (!options.leaveRunning) this.containers.delete(ref.id);
    const imageBytes = 64 + pages + JSON.stringify(record).length;
    return {
      container: options.leaveRunning ? c : { ...c, state: 'stopped' },
      imagesDir: dir,
      stats: { imageBytes, totalMs: 12, frozenMs: 7.5, pagesWritten: pages / 4096, pagesSkippedParent: options.parentImage ? pages / 4096 : 0 },
    };
  }

  async restore(options: RestoreOptions): Promise<RestoreResult> {
    this.calls.push({ op: 'restore', options });
    const dir = resolve(options.imagesDir);
    if (!existsSync(join(dir, 'inventory.img'))) throw new FerryError('ERR_IMAGE_NOT_FOUND', `${dir} holds no CRIU images`);
    const record = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8')) as CheckpointRecord<'runc'>;
    const name = options.name ?? record.id;
    if (this.containers.has(name)) throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `runc already has a container named ${name}`);
    if (this.failRestore) throw this.failRestore;
    if (options.workDir) writeFileSync(join(options.workDir, 'restore.log'), 'fake restore\n');
    let netnsPath = record.netns?.path;
    if (options.bundle) {
      const config = JSON.parse(readFileSync(join(options.bundle, 'config.json'), 'utf8')) as OciConfig;
      const ns = config.linux?.namespaces?.find((n) => n.type === 'network');
      // The runc adapter makes a namespace for a path that does not exist; the fake names it the same way.
      netnsPath = ns?.path && !existsSync(ns.path) ? `/run/netns/ferry-ct-${name}` : ns?.path;
    }
    const info = this.add(name, netnsPath);
    info.bundle = `/run/ferry/runc/${name}/bundle`;
    return { container: structuredClone(info), restoreMs: 42 };
  }

  async remove(id: string): Promise<void> {
    this.calls.push({ op: 'remove', id });
    if (this.failRemove) throw this.failRemove;
    this.containers.delete(id);
  }

  async pause(id: string): Promise<void> {
    this.calls.push({ op: 'pause', id });
    await this.inspect(id);
    this.containers.get(id)!.state = 'paused';
  }

  async resume(id: string): Promise<void> {
    this.calls.push({ op: 'resume', id });
  }

  async fenceNetwork(id: string): Promise<Fence> {
    this.calls.push({ op: 'fence', id });
    return asFence({ runtime: 'runc', id, kind: 'none' }, (record) => this.unfenceNetwork(record));
  }

  async unfenceNetwork(record: FenceRecord): Promise<void> {
    this.calls.push({ op: 'unfence', id: record.id });
  }

  manualCommands(name: string): { thaw: string; remove: string } {
    return { thaw: `runc resume ${name}`, remove: `runc delete -f ${name}` };
  }


  async networkTies(id: string): Promise<{ addresses: string[]; establishedTcp: number }> {
    await this.inspect(id);
    return { addresses: [], establishedTcp: 0 };
  }
}
