/**
 * The one place runtime adapters are registered. runc is the reference adapter (runc-adapter.ts); Docker
 * (docker-adapter.ts) is registered too; LXC (lxc-adapter.ts) and Podman (podman-adapter.ts) join when their options
 * are given (the CLI always gives them). `findContainer` resolves what a user typed ("web" or "runc:web") to one container.
 */
import type { ContainerInfo, RuntimeName } from '../model/container';
import { printable } from '../model/printable';
import { FerryError, isFerryError } from '../model/ferry-error';
import { DockerAdapter, type DockerAdapterOptions } from './docker-adapter';
import { LxcAdapter, type LxcAdapterOptions } from './lxc-adapter';
import { PodmanAdapter, type PodmanAdapterOptions } from './podman-adapter';
import { RuncAdapter, type RuncAdapterOptions } from './runc-adapter';
import type { RuntimeAdapter } from './runtime-adapter';

export interface RuntimeRegistryOptions {
  /** Options of the runc adapter; `false` leaves runc out. */
  runc?: Partial<RuncAdapterOptions> | false;
  /** Options of the LXC adapter; `false` leaves LXC out. */
  lxc?: Partial<LxcAdapterOptions> | false;
  /** Options of the Docker adapter; `false` leaves Docker out. */
  docker?: Partial<DockerAdapterOptions> | false;
  /** Options of the Podman adapter; Podman joins only when they are given. */
  podman?: Partial<PodmanAdapterOptions> | false;
  /** Extra or replacement adapters (tests pass fakes here); an adapter replaces a built-in one of the same name. */
  adapters?: readonly RuntimeAdapter[];
}

export interface FoundContainer {
  adapter: RuntimeAdapter;
  container: ContainerInfo;
}

export interface RuntimeRegistry {
  readonly adapters: readonly RuntimeAdapter[];
  /** The adapter of `name`; ERR_RUNTIME_UNAVAILABLE when it is not registered. */
  get(name: RuntimeName): RuntimeAdapter;
  /**
   * The container `spec` names: "NAME" is looked up in every runtime, "RUNTIME:NAME" only in that one.
   * ERR_RUNTIME_NOT_FOUND when no runtime has it; ERR_PRECHECK_BAD_INPUT when several do (the message lists them and
   * the hint shows the RUNTIME:NAME form). A runtime that fails (not installed, daemon down) does not hide a match in
   * another one; when nothing matched, its error is the one thrown (a runtime that is not installed only counts when
   * no runtime is).
   */
  findContainer(spec: string): Promise<FoundContainer>;
}

const RUNTIME_NAMES: readonly RuntimeName[] = ['runc', 'lxc', 'docker', 'podman'];

/** The registry of the runtimes `options` enables (runc and Docker by default, LXC when its options are given). */
export function createRuntimeRegistry(options: RuntimeRegistryOptions = {}): RuntimeRegistry {
  const byName = new Map<RuntimeName, RuntimeAdapter>();
  if (options.runc !== false) byName.set('runc', new RuncAdapter(options.runc ?? {}));
  if (options.lxc !== undefined && options.lxc !== false) byName.set('lxc', new LxcAdapter(options.lxc));
  if (options.docker !== false) byName.set('docker', new DockerAdapter(options.docker ?? {}));
  if (options.podman !== undefined && options.podman !== false) byName.set('podman', new PodmanAdapter(options.podman));
  for (const adapter of options.adapters ?? []) byName.set(adapter.name, adapter);
  const adapters = Object.freeze([...byName.values()]);

  const get = (name: RuntimeName): RuntimeAdapter => {
    const adapter = byName.get(name);
    if (!adapter) {
      throw new FerryError('ERR_RUNTIME_UNAVAILABLE', `no ${name} adapter is registered`, {
        hint: `ferry supports ${adapters.map((a) => a.name).join(', ') || 'no runtime'} here; run \`ferry doctor\`.`,
      });
    }
    return adapter;
  };

  const findContainer = async (spec: string): Promise<FoundContainer> => {
    const { runtime, id } = parseContainerSpec(spec);
    if (runtime) {
      const adapter = get(runtime);
      return { adapter, container: await adapter.inspect(id) };
    }
    type Outcome = { adapter: RuntimeAdapter; container: ContainerInfo } | { adapter: RuntimeAdapter; error: unknown };
    const results = await Promise.all(
      adapters.map(async (adapter): Promise<Outcome> => {
        try {
          return { adapter, container: await adapter.inspect(id) };
        } catch (err) {
          return { adapter, error: err };
        }
      }),
    );
    const found = results.flatMap((r) => ('container' in r ? [r] : []));
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      const names = found.map((f) => `${f.adapter.name}:${id}`);
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${id}" names a container in ${found.length} runtimes: ${names.join(', ')}`, {
        hint: `Say which one: ${names.map((n) => `\`${n}\``).join(' or ')}.`,
        details: { id, runtimes: found.map((f) => f.adapter.name) },
      });
    }
    const errors = results.flatMap((r) => ('error' in r ? [r.error] : []));
    const broken = errors.find((e) => !isFerryError(e, 'ERR_RUNTIME_NOT_FOUND') && !isFerryError(e, 'ERR_RUNTIME_UNAVAILABLE'));
    if (broken) throw broken;
    if (errors.length > 0 && errors.every((e) => isFerryError(e, 'ERR_RUNTIME_UNAVAILABLE'))) throw errors[0];
    throw new FerryError('ERR_RUNTIME_NOT_FOUND', `no container named ${id} in ${adapters.map((a) => a.name).join(', ') || 'any runtime'}`, {
      hint: 'Run `ferry ps` to see the containers ferry can find.',
      details: { id, runtimes: adapters.map((a) => a.name) },
    });
  };

  return { adapters, get, findContainer };
}

/** "NAME" or "RUNTIME:NAME" (runtime names never contain ':', and runc, LXC and Docker names cannot either). */
/** What every runtime ferry drives accepts as a container name (runc ids, LXC and Docker names), bounded. */
const CONTAINER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
export const MAX_CONTAINER_NAME = 128;

/**
 * Throws ERR_PRECHECK_BAD_INPUT unless `name` can be a container name: letters, digits and _ . + -, not starting
 * with . + or -, at most MAX_CONTAINER_NAME characters. It also ends up in paths (state dirs, bundles), so nothing
 * like "../../etc" gets that far.
 */
export function assertContainerName(name: string, what = 'container name'): void {
  if (name.length > MAX_CONTAINER_NAME) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the ${what} is ${name.length} characters long (at most ${MAX_CONTAINER_NAME})`, { hint: 'Use a shorter name.' });
  }
  if (!CONTAINER_NAME.test(name)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `"${printable(name, 80)}" is not a valid ${what}`, {
      hint: 'Container names use letters, digits and _ . + - and do not start with . + or -.',
    });
  }
}

export function parseContainerSpec(spec: string): { runtime?: RuntimeName; id: string } {
  const colon = spec.indexOf(':');
  if (colon < 0) {
    if (!spec) throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'empty container name', { hint: 'Name a container (`ferry ps` lists them).' });
    assertContainerName(spec);
    return { id: spec };
  }
  const runtime = spec.slice(0, colon);
  const id = spec.slice(colon + 1);
  if (!(RUNTIME_NAMES as readonly string[]).includes(runtime)) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `unknown runtime "${printable(runtime, 40)}" in "${printable(spec, 80)}"`, {
      hint: `Use ${RUNTIME_NAMES.map((r) => `${r}:NAME`).join(', ')} or just NAME.`,
    });
  }
  if (!id) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `no container name after "${runtime}:"`, { hint: `Write ${runtime}:NAME.` });
  assertContainerName(id);
  return { runtime: runtime as RuntimeName, id };
}
