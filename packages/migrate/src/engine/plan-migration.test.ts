import { planMigration, type PlanInputs } from './plan-migration';
import { CONTAINER, RUNC, dir, host, inputs } from './plan-fixtures.test-helpers';

/** The plan's strategy and reason, or the error's code and message: one line per case. */
function outcome(i: PlanInputs): string {
  try {
    const p = planMigration(i);
    return `${p.strategy}: ${p.reason}`;
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
}

test('strategy choice, host by host (this project hosts first: no soft-dirty, lazy pages, memory reads)', () => {
  const cases: Record<string, PlanInputs> = {
    'project hosts, auto': inputs(),
    'soft-dirty on the source, auto': inputs({ source: host('a', { memTrack: true }) }),
    'soft-dirty only on the destination, pre-copy asked': inputs({ destination: host('b', { memTrack: true }), request: { strategy: 'pre-copy' } }),
    'no memory reads on the source, auto': inputs({ source: host('a', { memoryRead: false }) }),
    'small pipe on the destination, auto': inputs({ destination: host('b', { pipe: 65536 }) }),
    'small pipe on the destination, post-copy asked': inputs({ destination: host('b', { pipe: 65536 }), request: { strategy: 'post-copy' } }),
    'no lazy pages on the source, auto': inputs({ source: host('a', { lazyPages: false }) }),
    'no lazy pages anywhere, hash-pre-copy asked': inputs({ source: host('a', { lazyPages: false }), destination: host('b', { lazyPages: false }), request: { strategy: 'hash-pre-copy' } }),
    'docker (no lazy dumps), auto': inputs({ runtime: { name: 'docker', features: { lazyPages: false }, needsImage: true } }),
    'lxc (no pre-dump), pre-copy asked': inputs({ source: host('a', { memTrack: true }), runtime: { name: 'lxc', features: { preDump: false }, needsImage: false }, request: { strategy: 'pre-copy' } }),
    'stop-and-copy asked': inputs({ request: { strategy: 'stop-and-copy' } }),
    'a clone, auto': inputs({ request: { clone: { name: 'web-2' } } }),
  };
  expect(Object.fromEntries(Object.entries(cases).map(([what, i]) => [what, outcome(i)]))).toMatchSnapshot();
});

test('refusals known before anything is frozen', () => {
  const cases: Record<string, PlanInputs> = {
    'the same host': inputs({ destination: host('a') }),
    'CRIU unusable there': inputs({ destination: host('b', { criuOk: false }) }),
    'another architecture': inputs({ destination: host('b', { arch: 'arm64' }) }),
    'runtime missing there': inputs({ destination: host('b', { runc: false }) }),
    'container paused': inputs({ container: { ...CONTAINER, state: 'paused' } }),
    'rootfs outside the bundle, runtime cannot restore onto a copy': inputs({ container: { ...CONTAINER, rootfs: '/data/web-rootfs' } }),
    'bind mount from the host, runtime cannot restore onto a copy': inputs({ container: { ...CONTAINER, bindMounts: [dir('/srv/web/config'), dir('/var/lib/web-data'), dir('/dev/fuse')] } }),
    'a bind-mounted file from the host': inputs({ runtime: RUNC, container: { ...CONTAINER, bindMounts: [{ path: '/etc/resolv.conf', directory: false }] } }),
    'a clone with hash-pre-copy': inputs({ request: { strategy: 'hash-pre-copy', clone: { name: 'x' } } }),
    'a clone holding TCP connections': inputs({ container: { ...CONTAINER, ties: { addresses: [], establishedTcp: 2 } }, request: { clone: { name: 'x' } } }),
    'a clone of an addressed container without --address': inputs({ container: { ...CONTAINER, ties: { addresses: ['10.0.0.5/24'], establishedTcp: 0 } }, request: { clone: { name: 'x' } } }),
  };
  expect(Object.fromEntries(Object.entries(cases).map(([what, i]) => [what, outcome(i)]))).toMatchSnapshot();
});

test('shared storage lifts the storage refusals and skips the bundle copy', () => {
  const outside = { ...CONTAINER, rootfs: '/data/web-rootfs', bindMounts: [dir('/var/lib/web-data')] };
  const plan = planMigration(inputs({ container: outside, request: { sharedStorage: true } }));
  expect(plan).toMatchObject({ copyBundle: false, strategy: 'hash-pre-copy' });
});

test('what the plan says to copy', () => {
  expect(planMigration(inputs({ request: { strategy: 'stop-and-copy' } }))).toEqual({
    strategy: 'stop-and-copy',
    reason: 'requested with --strategy',
    targetName: 'web',
    clone: false,
    copyImage: false,
    copyBundle: true,
    copyTrees: [],
    streamPages: true,
    lazyRestore: false,
  });
  const docker = planMigration(inputs({ runtime: { name: 'docker', features: { lazyPages: false }, needsImage: true }, container: { name: 'd', state: 'running', pid: 9 } }));
  expect(docker).toMatchObject({ strategy: 'stop-and-copy', copyImage: true, copyBundle: false });
  const outside = { ...CONTAINER, rootfs: '/data/web-rootfs', bindMounts: [dir('/srv/web/state'), dir('/var/lib/web-data'), dir('/data/web-rootfs/var'), dir('/sys/fs/cgroup')] };
  expect(planMigration(inputs({ container: outside, runtime: RUNC })).copyTrees).toEqual([
    { part: 'rootfs', path: '/data/web-rootfs' },
    { part: 'mount/0', path: '/var/lib/web-data' },
  ]);
  expect(planMigration(inputs({ container: outside, runtime: RUNC, request: { sharedStorage: true } })).copyTrees).toEqual([]);
  const clone = planMigration(inputs({ request: { clone: { name: 'web-2', readdress: { eth0: '10.0.0.9/24' } } }, container: { ...CONTAINER, ties: { addresses: ['10.0.0.5/24'], establishedTcp: 0 } } }));
  expect(clone).toMatchObject({ strategy: 'stop-and-copy', clone: true, targetName: 'web-2' });
});

test('--lazy-restore: with hash-pre-copy and a destination that restores lazily; refused otherwise, skipped by auto', () => {
  const lazy = (over: Partial<PlanInputs> & { request?: Partial<PlanInputs['request']> } = {}) => inputs({ ...over, request: { lazyRestore: true, ...over.request } });
  const cases: Record<string, PlanInputs> = {
    'auto on project hosts': lazy(),
    'hash-pre-copy asked': lazy({ request: { strategy: 'hash-pre-copy' } }),
    'stop-and-copy asked': lazy({ request: { strategy: 'stop-and-copy' } }),
    'auto, soft-dirty source (pre-copy wins)': lazy({ source: host('a', { memTrack: true }) }),
    'no lazy pages on the destination': lazy({ destination: host('b', { lazyPages: false }), request: { strategy: 'hash-pre-copy' } }),
    'small pipe on the destination': lazy({ destination: host('b', { pipe: 65536 }) }),
  };
  const table = Object.fromEntries(Object.entries(cases).map(([what, i]) => {
    try {
      const p = planMigration(i);
      return [what, `${p.strategy}${p.lazyRestore ? ' lazily' : ''}: ${p.reason}`];
    } catch (err) {
      return [what, `${(err as { code: string }).code}: ${(err as Error).message}`];
    }
  }));
  expect(table).toMatchInlineSnapshot(`
{
  "auto on project hosts": "hash-pre-copy lazily: memory is copied in rounds while the container runs (hashing pages, no kernel tracking needed), so the freeze sends only what changed; pre-copy needs CRIU memory tracking (soft-dirty bits, CONFIG_MEM_SOFT_DIRTY) on the source; restored lazily from the pages the destination holds (--lazy-restore)",
  "auto, soft-dirty source (pre-copy wins)": "pre-copy: the source tracks memory: CRIU pre-dumps while it runs keep the final freeze short",
  "hash-pre-copy asked": "hash-pre-copy lazily: requested with --strategy; restored lazily from the pages the destination holds (--lazy-restore)",
  "no lazy pages on the destination": "ERR_PRECHECK_FEATURE_MISSING: --lazy-restore needs CRIU lazy pages (userfaultfd) on b",
  "small pipe on the destination": "ERR_PRECHECK_FEATURE_MISSING: --lazy-restore needs fs.pipe-max-size >= 4194304 on b",
  "stop-and-copy asked": "ERR_PRECHECK_BAD_INPUT: --lazy-restore works with hash-pre-copy only, not stop-and-copy",
}
`);
});

test('auto restores hash-pre-copy lazily wherever it can, and never when told not to, for a clone, or where it cannot', () => {
  const lazily = (over: Parameters<typeof inputs>[0] = {}) => planMigration(inputs(over)).lazyRestore;
  expect(lazily()).toBe(true);
  expect(lazily({ request: { lazyRestore: false } })).toBe(false);
  expect(lazily({ request: { strategy: 'hash-pre-copy' } })).toBe(false);
  expect(lazily({ request: { clone: { name: 'web-2' } } })).toBe(false);
  expect(lazily({ destination: host('b', { pipe: 65536 }) })).toBe(false);
  expect(lazily({ destination: host('b', { lazyPages: false }) })).toBe(false);
  expect(lazily({ runtime: { name: 'lxc', features: { lazyPages: true, preDump: false, lazyRestore: false }, needsImage: false } })).toBe(false);
  expect(lazily({ source: host('a', { memTrack: true }) })).toBe(false); // pre-copy wins, restored eagerly
});
