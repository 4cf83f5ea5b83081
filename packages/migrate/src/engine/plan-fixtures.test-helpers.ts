/** Host summaries and plan inputs for the planner's tests (plan-migration, assess-move). */
import { LAZY_PAGES_MIN_PIPE_BYTES } from '@ferry/core';
import type { HostSummary } from '../protocol/agent-messages';
import type { ContainerFacts, PlanInputs } from './plan-migration';

export function host(id: string, overrides: { memTrack?: boolean; lazyPages?: boolean; pipe?: number; memoryRead?: boolean; arch?: string; criuOk?: boolean; runc?: boolean } = {}): HostSummary {
  return {
    hostId: id,
    hostname: id,
    kernel: '6.18',
    arch: overrides.arch ?? 'x64',
    pageSizeBytes: 4096,
    ferryVersion: '0.1.0',
    criu: { version: '4.2.1', versionOk: overrides.criuOk ?? true, checkOk: true, memTrack: overrides.memTrack ?? false, lazyPages: overrides.lazyPages ?? true },
    runtimes: [{ name: 'runc', usable: overrides.runc ?? true }, { name: 'lxc', usable: true }, { name: 'docker', usable: true }],
    freeDiskBytes: 1 << 30,
    pipeMaxSizeBytes: overrides.pipe ?? LAZY_PAGES_MIN_PIPE_BYTES,
    memoryRead: overrides.memoryRead ?? true,
  };
}

export const dir = (path: string) => ({ path, directory: true });
export const RUNC = { name: 'runc' as const, features: { relocatablePaths: true }, needsImage: false };
export const CONTAINER: ContainerFacts = { name: 'web', state: 'running', pid: 42, bundle: '/srv/web', rootfs: '/srv/web/rootfs' };

export function inputs(over: Partial<PlanInputs> & { request?: Partial<PlanInputs['request']> } = {}): PlanInputs {
  return {
    source: host('a'),
    destination: host('b'),
    destinationName: 'b',
    runtime: { name: 'runc', needsImage: false },
    ...over,
    container: over.container ?? CONTAINER,
    request: { strategy: 'auto', sharedStorage: false, ...over.request },
  };
}
