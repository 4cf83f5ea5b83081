import { closest, resolveAdapterOptions, tool } from './adapter-options';

interface Opts {
  fooPath: string;
  searchPath: string;
  waitMs: number;
  root: string | undefined;
}

const defaults = { fooPath: tool('sh'), searchPath: '/usr/bin:/bin', waitMs: 5, root: undefined };

test('fills defaults, finds tools in the resolved searchPath, and freezes', () => {
  const o = resolveAdapterOptions<Opts>('foo', {}, defaults);
  expect(Object.isFrozen(o)).toBe(true);
  expect(o).toEqual({ fooPath: expect.stringMatching(/\/sh$/), searchPath: '/usr/bin:/bin', waitMs: 5, root: undefined });
  // A tool not in the search path stays its bare name (the spawn error then names it).
  expect(resolveAdapterOptions<Opts>('foo', { searchPath: '/nonexistent' }, defaults).fooPath).toBe('sh');
  expect(resolveAdapterOptions<Opts>('foo', { fooPath: '/x/sh', root: '/r' }, defaults)).toMatchObject({ fooPath: '/x/sh', root: '/r' });
});

test('rejects unknown keys with a did-you-mean, and deadlines that are not positive numbers', () => {
  expect(() => resolveAdapterOptions<Opts>('foo', { waitMS: 1 } as never, defaults)).toThrow('foo adapter: unknown option "waitMS"; did you mean "waitMs"?');
  expect(() => resolveAdapterOptions<Opts>('foo', { zzzzzzzz: 1 } as never, defaults)).toThrow(/unknown option "zzzzzzzz"$/);
  for (const bad of [0, -1, Number.NaN, Infinity, '5']) {
    expect(() => resolveAdapterOptions<Opts>('foo', { waitMs: bad as never }, defaults)).toThrow(/waitMs must be a positive number/);
  }
});

test('finish normalises the whole object before it is frozen', () => {
  const o = resolveAdapterOptions<Opts>('foo', { root: '' }, defaults, (r) => ({ ...r, root: r.root || '/default' }));
  expect(o.root).toBe('/default');
});

test('closest: a near key, or none when nothing is near', () => {
  expect(closest('runcRot', ['runcRoot', 'runcPath'])).toBe('runcRoot');
  expect(closest('LXCPATHS', ['lxcPaths'])).toBe('lxcPaths');
  expect(closest('completely', ['runcRoot'])).toBeUndefined();
});
