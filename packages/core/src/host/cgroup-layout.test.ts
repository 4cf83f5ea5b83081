import { parseCgroupLayout } from './cgroup-layout';

const hybrid = `
25 1 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
28 25 0:25 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
29 25 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const unified = `30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const legacy = `26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n27 25 0:24 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n`;

describe('parseCgroupLayout', () => {
  it('hybrid: v1 controllers and a v2 hierarchy; the v1 freezer wins', () => {
    const info = parseCgroupLayout(hybrid);
    expect(info.layout).toBe('hybrid');
    expect(info.freezer).toEqual({ kind: 'v1', mountpoint: '/sys/fs/cgroup/freezer' });
    expect(info.v2Mountpoint).toBe('/sys/fs/cgroup/unified');
    expect(info.v1Controllers['name=systemd']).toBe('/sys/fs/cgroup/systemd');
  });

  it('unified v2', () => {
    const info = parseCgroupLayout(unified);
    expect(info.layout).toBe('v2');
    expect(info.freezer).toEqual({ kind: 'v2', mountpoint: '/sys/fs/cgroup' });
  });

  it('legacy v1', () => {
    const info = parseCgroupLayout(legacy);
    expect(info.layout).toBe('v1');
    expect(info.v1Controllers.cpuacct).toBe('/sys/fs/cgroup/cpu,cpuacct');
  });

  it('none', () => {
    expect(parseCgroupLayout('').layout).toBe('none');
    expect(parseCgroupLayout('').freezer).toBeNull();
  });
});
