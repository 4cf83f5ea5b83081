import { isFerryError } from '../model/ferry-error';
import { DEFAULT_LXC_PATH, LxcAdapter, resolveLxcAdapterOptions } from './lxc-adapter';
import { createRuntimeRegistry } from './registry';

test('options: defaults filled in and frozen; lxcpaths resolved and de-duplicated', () => {
  const o = resolveLxcAdapterOptions();
  expect(o.lxcPaths).toEqual([DEFAULT_LXC_PATH]);
  expect(o.restoreTimeoutMs).toBeGreaterThan(0);
  expect(Object.isFrozen(o)).toBe(true);
  expect(resolveLxcAdapterOptions({ lxcPaths: ['/srv/lxc/', '/srv/lxc', '/var/lib/lxc'] }).lxcPaths).toEqual(['/srv/lxc', '/var/lib/lxc']);
});

test('options: unknown keys and bad timeouts are bad input', () => {
  expect(() => resolveLxcAdapterOptions({ lxcpath: ['/x'] } as never)).toThrow(/unknown option "lxcpath"/);
  expect(() => resolveLxcAdapterOptions({ restoreTimeoutMs: 0 })).toThrow(/positive/);
  expect(() => resolveLxcAdapterOptions({ lxcPaths: [] })).toThrow(/no lxcpath/);
});

test('names that could read as flags or paths are refused before any tool runs', async () => {
  const adapter = new LxcAdapter({ lxcPaths: ['/nonexistent-lxcpath'] });
  for (const bad of ['-n', '.hidden', 'a/b', '../etc', '']) {
    const err = await adapter.inspect(bad).catch((e: unknown) => e);
    expect(isFerryError(err, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
  }
  const missing = await adapter.inspect('web').catch((e: unknown) => e);
  expect(isFerryError(missing, 'ERR_RUNTIME_NOT_FOUND')).toBe(true);
  expect(await adapter.list()).toEqual([]);
  await expect(adapter.remove('web')).resolves.toBeUndefined();
});

test('the registry holds LXC when its options are given, and resolves lxc:NAME there', async () => {
  expect(createRuntimeRegistry({ docker: false }).adapters.map((a) => a.name)).toEqual(['runc']);
  const registry = createRuntimeRegistry({ runc: false, docker: false, lxc: { lxcPaths: ['/nonexistent-lxcpath'] } });
  expect(registry.adapters.map((a) => a.name)).toEqual(['lxc']);
  const err = await registry.findContainer('lxc:web').catch((e: unknown) => e);
  expect(isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')).toBe(true);
});
