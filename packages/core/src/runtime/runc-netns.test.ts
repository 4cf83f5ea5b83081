import { ipBatchIn, isValidNetnsName, netnsPath, parseIpAddrJson } from './runc-netns';

// `ip -n NS -j addr show` of a container netns on the lab host: lo, eth0 (veth) with IPv4 + IPv6, and a veth peer
// with only a link-local address.
const IP_ADDR = JSON.stringify([
  {
    ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00',
    addr_info: [
      { family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' },
      { family: 'inet6', local: '::1', prefixlen: 128, scope: 'host' },
    ],
  },
  {
    ifindex: 2, link: 'eth0', ifname: 'ferry-p0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether',
    address: 'ca:4d:17:17:8e:5a',
    addr_info: [{ family: 'inet6', local: 'fe80::c84d:17ff:fe17:8e5a', prefixlen: 64, scope: 'link', tentative: true }],
  },
  {
    ifindex: 3, link: 'ferry-p0', ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, link_type: 'ether',
    address: 'be:f5:2d:8e:a0:d6',
    addr_info: [
      { family: 'inet', local: '10.77.0.2', prefixlen: 24, scope: 'global', label: 'eth0' },
      { family: 'inet6', local: 'fd00::2', prefixlen: 64, scope: 'global', nodad: true },
      { family: 'inet6', local: 'fe80::bcf5:2dff:fe8e:a0d6', prefixlen: 64, scope: 'link', tentative: true },
    ],
  },
]);

test('keeps interfaces with global addresses, without lo and link-local addresses', () => {
  expect(parseIpAddrJson(IP_ADDR)).toEqual([
    {
      ifname: 'eth0',
      mac: 'be:f5:2d:8e:a0:d6',
      mtu: 1500,
      addresses: [
        { ifname: 'eth0', family: 'inet', address: '10.77.0.2/24' },
        { ifname: 'eth0', family: 'inet6', address: 'fd00::2/64' },
      ],
    },
  ]);
  expect(parseIpAddrJson('')).toEqual([]);
  expect(parseIpAddrJson('[]')).toEqual([]);
});

test('names network namespaces safely', () => {
  expect(netnsPath('ferry-ct-web')).toBe('/run/netns/ferry-ct-web');
  expect(isValidNetnsName('ferry-ct-web.1')).toBe(true);
  expect(isValidNetnsName('../etc')).toBe(false);
  expect(isValidNetnsName('a/b')).toBe(false);
  expect(isValidNetnsName('')).toBe(false);
});

test('an ip batch refuses an argument its line parser would split, comment out or unquote, before running anything', async () => {
  const tools = { ipPath: '/nonexistent/ip', nsenterPath: '/nonexistent/nsenter' };
  for (const bad of ['a b', 'a\nlink del x', 'we#rd', 'q"te', "q'te", 'back\\slash', '']) {
    await expect(ipBatchIn(tools, '/run/netns/x', [['link', 'set', bad, 'down']])).rejects.toMatchObject({ code: 'ERR_PRECHECK_BAD_INPUT' });
  }
  await expect(ipBatchIn(tools, '/run/netns/x', [])).resolves.toBeUndefined();
});
