import {
  buildConfigDump,
  buildNetworkStatus,
  buildSpecDump,
  interfacesFromNetworkStatus,
  isRootfsComplete,
  parseConfigDump,
  parseDeletedFiles,
  parseSpecDump,
} from './archive-layout';

const spec = { ociVersion: '1.0.2-dev', process: { args: ['/usr/bin/workload', '--port', '8080'] }, root: { path: 'rootfs' } };

describe('config.dump', () => {
  it('names the image twice (id and name: ids are local to a storage) and asks for a namespace when the container had one', () => {
    const at = new Date('2026-12-05T10:00:00Z');
    const dump = buildConfigDump({ name: 'web', spec, rootfsImage: 'localhost/ferry-empty:latest', ownNetns: true, createdAt: at, checkpointedAt: at, id: 'a'.repeat(64) });
    expect(dump).toMatchObject({
      id: 'a'.repeat(64),
      name: 'web',
      rootfsImageID: 'localhost/ferry-empty:latest',
      rootfsImageName: 'localhost/ferry-empty:latest',
      createNetNS: true,
      command: ['/usr/bin/workload', '--port', '8080'],
      runtime: 'runc',
      createdTime: '2026-12-05T10:00:00.000Z',
      checkpointedTime: '2026-12-05T10:00:00.000Z',
    });
    expect(dump.spec).toBe(spec);
  });

  it('makes a fresh 64-hex id each time', () => {
    const at = new Date();
    const a = buildConfigDump({ name: 'x', spec, rootfsImage: 'i', ownNetns: false, createdAt: at, checkpointedAt: at });
    const b = buildConfigDump({ name: 'x', spec, rootfsImage: 'i', ownNetns: false, createdAt: at, checkpointedAt: at });
    expect(a.id).toMatch(/^[0-9a-f]{64}$/);
    expect(a.id).not.toBe(b.id);
  });

  it('refuses a config.dump without a name or with wrongly typed fields', () => {
    expect(() => parseConfigDump([])).toThrow(/not a JSON object/);
    expect(() => parseConfigDump({ id: 'x' })).toThrow(/no container name/);
    expect(() => parseConfigDump({ name: 'x', rootfsImageName: 3 })).toThrow(/rootfsImageName/);
    expect(parseConfigDump({ name: 'x', unknownField: 1 }).name).toBe('x');
  });
});

describe('spec.dump', () => {
  it('marks ferry archives as carrying the complete rootfs, without changing the original', () => {
    const out = buildSpecDump({ ...spec, annotations: { keep: 'me' } });
    expect(isRootfsComplete(out)).toBe(true);
    expect(out.annotations).toEqual({ keep: 'me', 'io.ferry.rootfs-diff': 'complete' });
    expect(isRootfsComplete(spec)).toBe(false);
  });

  it('refuses a terminal and malformed lists', () => {
    expect(() => parseSpecDump({ process: { terminal: true } })).toThrow(/terminal/);
    expect(() => parseSpecDump({ mounts: {} })).toThrow(/mounts/);
    expect(() => parseSpecDump({ linux: { namespaces: 'net' } })).toThrow(/namespaces/);
  });
});

describe('network.status', () => {
  const interfaces = [
    { ifname: 'lo', addresses: [{ ifname: 'lo', family: 'inet' as const, address: '127.0.0.1/8' }] },
    { ifname: 'eth0', mac: '02:00:0a:4d:00:02', addresses: [{ ifname: 'eth0', family: 'inet' as const, address: '10.77.0.2/24' }] },
  ];

  it('is null without interfaces (as Podman writes it), else one network with the interfaces but lo', () => {
    expect(buildNetworkStatus([])).toBeNull();
    expect(buildNetworkStatus(interfaces)).toEqual({ ferry: { interfaces: { eth0: { subnets: [{ ipnet: '10.77.0.2/24' }], mac_address: '02:00:0a:4d:00:02' } } } });
  });

  it('round-trips, and reads Podman\'s status blocks (gateways dropped, junk ignored)', () => {
    expect(interfacesFromNetworkStatus(buildNetworkStatus(interfaces))).toEqual([interfaces[1]]);
    const podman = {
      podman: { interfaces: { eth0: { subnets: [{ ipnet: '10.88.0.5/16', gateway: '10.88.0.1' }, { ipnet: 'fd00::5/64' }], mac_address: 'ee:aa:bb:cc:dd:ee' } } },
      other: { interfaces: { eth0: { subnets: [{ ipnet: '1.2.3.4/8' }] }, 'bad name!': {}, eth1: { subnets: [{ ipnet: 'nonsense' }], mac_address: 'zz' } } },
    };
    expect(interfacesFromNetworkStatus(podman)).toEqual([
      {
        ifname: 'eth0',
        mac: 'ee:aa:bb:cc:dd:ee',
        addresses: [
          { ifname: 'eth0', family: 'inet', address: '10.88.0.5/16' },
          { ifname: 'eth0', family: 'inet6', address: 'fd00::5/64' },
        ],
      },
      { ifname: 'eth1', addresses: [] },
    ]);
    expect(interfacesFromNetworkStatus(null)).toEqual([]);
    expect(interfacesFromNetworkStatus([1, 2])).toEqual([]);
  });
});

it('deleted.files is a list of strings', () => {
  expect(parseDeletedFiles(['/etc/motd'])).toEqual(['/etc/motd']);
  expect(() => parseDeletedFiles({})).toThrow();
  expect(() => parseDeletedFiles(['/a', 3])).toThrow();
});
