/**
 * The cgroup layout of a host, read from a mountinfo text: v1, v2 (unified) or hybrid (v1 controllers plus a v2
 * hierarchy at /sys/fs/cgroup/unified). Pure over the text so it is tested with recorded mountinfo files.
 */
export type CgroupLayout = 'v1' | 'v2' | 'hybrid' | 'none';

export interface CgroupInfo {
  layout: CgroupLayout;
  /** Where the freezer lives: the v1 freezer hierarchy, or the v2 root (cgroup.freeze in each cgroup). */
  freezer: { kind: 'v1'; mountpoint: string } | { kind: 'v2'; mountpoint: string } | null;
  v2Mountpoint?: string;
  v1Controllers: Record<string, string>;
}

/** The host's cgroup layout and freezer from a mountinfo text (pure). */
export function parseCgroupLayout(mountinfo: string): CgroupInfo {
  const v1Controllers: Record<string, string> = {};
  let v2Mountpoint: string | undefined;
  for (const line of mountinfo.split('\n')) {
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mountpoint = left[4];
    const fstype = right[0];
    if (!mountpoint) continue;
    if (fstype === 'cgroup2') {
      if (!v2Mountpoint || mountpoint === '/sys/fs/cgroup') v2Mountpoint = mountpoint;
    } else if (fstype === 'cgroup') {
      for (const opt of (right[2] ?? '').split(',')) {
        if (['rw', 'ro', 'relatime', 'nosuid', 'nodev', 'noexec'].includes(opt) || opt.startsWith('release_agent')) continue;
        if (!(opt in v1Controllers)) v1Controllers[opt] = mountpoint;
      }
    }
  }
  const hasV1 = Object.keys(v1Controllers).length > 0;
  const layout: CgroupLayout = hasV1 ? (v2Mountpoint ? 'hybrid' : 'v1') : v2Mountpoint ? 'v2' : 'none';
  const freezerV1 = v1Controllers.freezer;
  const freezer = freezerV1
    ? { kind: 'v1' as const, mountpoint: freezerV1 }
    : v2Mountpoint
      ? { kind: 'v2' as const, mountpoint: v2Mountpoint }
      : null;
  return { layout, freezer, v2Mountpoint, v1Controllers };
}
