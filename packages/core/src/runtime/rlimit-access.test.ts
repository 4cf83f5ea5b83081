import { hasCapability, idsOf, sameCredentials } from './rlimit-access';

const status = (capEff: string, uid: string, gid: string) => `Name:\tredis-server\nUid:\t${uid}\nGid:\t${gid}\nCapEff:\t${capEff}\n`;

test('CapEff bit 24 (CAP_SYS_RESOURCE) decides, read as hex', () => {
  expect(hasCapability(status('000001ffffffffff', '0 0 0 0', '0 0 0 0'))).toBe(true);
  expect(hasCapability(status('000001fffeffffff', '0 0 0 0', '0 0 0 0'))).toBe(false); // bit 24 cleared
  expect(hasCapability('Name:\tx\n')).toBe(false);
});

test('the kernel rule: real, effective and saved ids all equal to the caller\'s (fsuid does not count)', () => {
  const root = { uid: 0, gid: 0 };
  expect(idsOf(status('0', '101 101 101 101', '103 103 103 103'))).toEqual({ uids: [101, 101, 101], gids: [103, 103, 103] });
  expect(sameCredentials(root, idsOf(status('0', '0 0 0 5', '0 0 0 0')))).toBe(true);
  expect(sameCredentials(root, idsOf(status('0', '0 33 0 33', '0 0 0 0')))).toBe(false); // nginx worker style
  expect(sameCredentials(root, idsOf(status('0', '0 0 0 0', '0 0 7 0')))).toBe(false);
});
