import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asFence, fenceLinks, liftFence, netnsInode, type FenceRecord } from './network-fence';

const tools = { ipPath: '/nonexistent/ip', nsenterPath: '/nonexistent/nsenter' };

test('a fence is its plain-JSON record; unfence() is there but not part of it', async () => {
  const record: FenceRecord = { runtime: 'runc', id: 'web', kind: 'links-down', netns: { path: '/run/netns/x', inode: 42 }, interfaces: ['eth0'] };
  const lifted: FenceRecord[] = [];
  const fence = asFence(record, async (r) => void lifted.push(r));
  expect(JSON.parse(JSON.stringify(fence))).toEqual(record);
  expect(structuredClone(fence)).toEqual(record);
  expect({ ...fence }).toEqual(record);
  await fence.unfence();
  expect(lifted).toEqual([record]);
});

test('netnsInode names network namespaces only', () => {
  expect(netnsInode('/proc/self/ns/net')).toEqual(expect.any(Number));
  expect(netnsInode('/proc/self/ns/uts')).toBeUndefined();
  expect(netnsInode('/etc/hostname')).toBeUndefined();
  expect(netnsInode('/nonexistent')).toBeUndefined();
});

test('lifting is a no-op when the fenced namespace is gone or the path now names another one', async () => {
  // The tools do not exist: any attempt to run them would throw.
  await liftFence(tools, { runtime: 'runc', id: 'web', kind: 'links-down', netns: { path: '/nonexistent/ns', inode: 1 }, interfaces: ['eth0'] });
  await liftFence(tools, { runtime: 'runc', id: 'web', kind: 'links-down', netns: { path: '/proc/self/ns/net', inode: 1 }, interfaces: ['eth0'] });
  await liftFence(tools, { runtime: 'runc', id: 'web', kind: 'none' });
  await liftFence(tools, { runtime: 'lxc', id: 'web', kind: 'bridge-ports', ports: [{ link: 'vethgone0', bridge: 'br0' }] });
});

test('a record naming a link that could read as a flag is refused', async () => {
  await expect(liftFence(tools, { runtime: 'lxc', id: 'web', kind: 'bridge-ports', ports: [{ link: '-x', bridge: 'br0' }] })).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
});

test('a fence that fails part-way brings up what it may have taken down, and rethrows', async () => {
  // A fake nsenter: lists eth0 and m, fails the batch, records everything else it is asked to run.
  const dir = mkdtempSync(join(tmpdir(), 'ferry-fence-'));
  const log = join(dir, 'log');
  const fake = join(dir, 'nsenter');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      `echo "$*" >> ${log}`,
      'case "$*" in',
      `  *" -j addr show") echo '[{"ifname":"eth0","link_type":"ether","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24}]},{"ifname":"m","link_type":"ether","addr_info":[{"family":"inet","local":"10.0.1.2","prefixlen":24}]}]' ;;`,
      '  *" -batch -") cat > /dev/null; echo "Cannot find device" >&2; exit 1 ;;',
      '  *" -S CRIU") exit 1 ;;',
      'esac',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  try {
    const err = await fenceLinks({ ipPath: 'ip', nsenterPath: fake }, { runtime: 'runc', id: 'web' }, '/proc/self/ns/net').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_RUNTIME_FAILED' });
    const ran = readFileSync(log, 'utf8');
    expect(ran).toMatch(/-batch -/);
    expect(ran).toMatch(/ip link set dev eth0 up/);
    expect(ran).toMatch(/ip link set dev m up/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
