import type { ContainerInfo, RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { createRuntimeRegistry, parseContainerSpec } from './registry';
import type { RuntimeAdapter } from './runtime-adapter';

function fake(name: RuntimeName, containers: string[], broken?: FerryError): RuntimeAdapter {
  const notFound = (id: string) => new FerryError('ERR_RUNTIME_NOT_FOUND', `no ${id}`, { hint: 'Run `ferry ps` to see the containers ferry can find.' });
  return {
    name,
    availability: async () => ({ usable: true }),
    list: async () => containers.map((id) => ({ ref: { runtime: name, id }, state: 'running' })),
    inspect: async (id: string): Promise<ContainerInfo> => {
      if (broken) throw broken;
      if (!containers.includes(id)) throw notFound(id);
      return { ref: { runtime: name, id }, state: 'running' };
    },
    preflight: async () => undefined,
    checkpoint: async () => {
      throw new Error('not in this test');
    },
    restore: async () => {
      throw new Error('not in this test');
    },
    remove: async () => undefined,
    pause: async () => undefined,
    resume: async () => undefined,
  };
}

test('parses NAME and RUNTIME:NAME', () => {
  expect(parseContainerSpec('web')).toEqual({ id: 'web' });
  expect(parseContainerSpec('lxc:web')).toEqual({ runtime: 'lxc', id: 'web' });
  expect(parseContainerSpec('podman:web')).toEqual({ runtime: 'podman', id: 'web' });
  expect(() => parseContainerSpec('crio:web')).toThrow(/unknown runtime "crio"/);
  expect(() => parseContainerSpec('runc:')).toThrow(FerryError);
  expect(() => parseContainerSpec('')).toThrow(FerryError);
});

test('registers runc and docker by default; adapters given replace built-ins of the same name', () => {
  expect(createRuntimeRegistry().adapters.map((a) => a.name)).toEqual(['runc', 'docker']);
  expect(createRuntimeRegistry({ docker: false }).adapters.map((a) => a.name)).toEqual(['runc']);
  const runc = fake('runc', []);
  const registry = createRuntimeRegistry({ docker: false, adapters: [runc, fake('lxc', [])] });
  expect(registry.get('runc')).toBe(runc);
  expect(registry.adapters.map((a) => a.name)).toEqual(['runc', 'lxc']);
  expect(() => createRuntimeRegistry({ runc: false }).get('runc')).toThrow(expect.objectContaining({ code: 'ERR_RUNTIME_UNAVAILABLE' }));
  expect(createRuntimeRegistry({ docker: false, podman: {} }).adapters.map((a) => a.name)).toEqual(['runc', 'podman']);
});

test('finds a container in whichever runtime has it', async () => {
  const registry = createRuntimeRegistry({ runc: false, docker: false, adapters: [fake('runc', ['a']), fake('lxc', ['b'])] });
  expect((await registry.findContainer('b')).container.ref).toEqual({ runtime: 'lxc', id: 'b' });
  expect((await registry.findContainer('runc:a')).adapter.name).toBe('runc');
});

test('a name in two runtimes is ambiguous, with the RUNTIME:NAME spelling as the hint', async () => {
  const registry = createRuntimeRegistry({ runc: false, docker: false, adapters: [fake('runc', ['web']), fake('docker', ['web'])] });
  const err = await registry.findContainer('web').catch((e: FerryError) => e);
  expect(err).toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT', details: { runtimes: ['runc', 'docker'] } });
  expect((err as FerryError).hint).toBe('Say which one: `runc:web` or `docker:web`.');
  expect((await registry.findContainer('docker:web')).adapter.name).toBe('docker');
});

test('not found anywhere is ERR_RUNTIME_NOT_FOUND with the ferry ps hint; a broken runtime is not hidden', async () => {
  const registry = createRuntimeRegistry({ runc: false, docker: false, adapters: [fake('runc', []), fake('lxc', [])] });
  await expect(registry.findContainer('x')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND', hint: 'Run `ferry ps` to see the containers ferry can find.' });
  const docker = new FerryError('ERR_RUNTIME_FAILED', 'dockerd is down');
  const withBroken = createRuntimeRegistry({ runc: false, docker: false, adapters: [fake('runc', ['a']), fake('docker', [], docker)] });
  expect((await withBroken.findContainer('a')).adapter.name).toBe('runc');
  await expect(withBroken.findContainer('x')).rejects.toBe(docker);
  const missingTool = new FerryError('ERR_RUNTIME_UNAVAILABLE', 'no lxc');
  const withMissing = createRuntimeRegistry({ runc: false, docker: false, adapters: [fake('runc', []), fake('lxc', [], missingTool)] });
  await expect(withMissing.findContainer('x')).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND' });
});
