import { asFence, liftFence, netnsInode, type FenceRecord } from './network-fence';

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
