import { removeCriuNetworkLock, unlockCommands } from './criu-network-lock';

/** A fake namespace: which chains exist, which jumps point at them. */
function fakeNetns(chains: Record<string, { jumps: string[] }>, failOn?: string) {
  const calls: string[] = [];
  const run = async (argv: string[]) => {
    calls.push(argv.join(' '));
    const [tool, , op, a, , b] = argv;
    const chain = chains[tool!];
    if (failOn && argv.join(' ').includes(failOn)) return false;
    if (op === '-S') return chain !== undefined;
    if (!chain) return false;
    if (op === '-D') {
      const i = chain.jumps.indexOf(a!);
      if (i < 0 || b !== 'CRIU') return false;
      chain.jumps.splice(i, 1);
      return true;
    }
    if (op === '-F') return true;
    if (op === '-X') {
      if (chain.jumps.length) return false;
      delete chains[tool!];
      return true;
    }
    return false;
  };
  return { run, calls, chains };
}

test('removes the jumps, then flushes and deletes the chain, for iptables only when ip6tables has none', async () => {
  const ns = fakeNetns({ iptables: { jumps: ['INPUT', 'OUTPUT'] } });
  expect(await removeCriuNetworkLock(ns.run)).toEqual(['iptables']);
  expect(ns.chains).toEqual({});
  expect(ns.calls).toEqual(['iptables -w -S CRIU', ...unlockCommands('iptables').map((c) => c.join(' ')), 'ip6tables -w -S CRIU']);
});

test('a namespace without the lock is left alone', async () => {
  const ns = fakeNetns({});
  expect(await removeCriuNetworkLock(ns.run)).toEqual([]);
  expect(ns.calls).toEqual(['iptables -w -S CRIU', 'ip6tables -w -S CRIU']);
});

test('a half-made lock (one jump missing) is still removed; a chain that stays is an error', async () => {
  const half = fakeNetns({ iptables: { jumps: ['INPUT'] }, ip6tables: { jumps: ['INPUT', 'OUTPUT'] } });
  expect(await removeCriuNetworkLock(half.run)).toEqual(['iptables', 'ip6tables']);
  const stuck = fakeNetns({ iptables: { jumps: ['INPUT', 'OUTPUT'] } }, '-X CRIU');
  await expect(removeCriuNetworkLock(stuck.run)).rejects.toThrow(/could not remove CRIU's network lock \(iptables/);
});
