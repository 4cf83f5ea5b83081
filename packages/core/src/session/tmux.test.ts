import { parseClients, parseServerInfo, TmuxServer, type TmuxRun } from './tmux';

describe('tmux', () => {
  test('list-sessions and list-clients output', () => {
    expect(parseServerInfo('main\t18061\t/tmp/tmux-0/fx1\t1\nother\t18061\t/tmp/tmux-0/fx1\t0\n')).toEqual({
      pid: 18061,
      socketPath: '/tmp/tmux-0/fx1',
      sessions: [
        { name: 'main', attachedClients: 1 },
        { name: 'other', attachedClients: 0 },
      ],
    });
    expect(() => parseServerInfo('')).toThrow(/unexpected/);
    expect(() => parseServerInfo('a\tb\n')).toThrow(/unexpected/);
    expect(parseClients('/dev/pts/1\t21074\tmain\n')).toEqual([{ name: '/dev/pts/1', pid: 21074, session: 'main' }]);
    expect(parseClients('')).toEqual([]);
  });

  test('names the server with -L or -S and reports a missing one as ERR_RUNTIME_NOT_FOUND', async () => {
    const calls: string[][] = [];
    const run: TmuxRun = async (argv) => {
      calls.push([...argv]);
      return { code: 1, stdout: '', stderr: 'error connecting to /tmp/tmux-0/nope (No such file or directory)\n' };
    };
    const server = new TmuxServer({ name: 'nope' }, { run });
    await expect(server.info()).rejects.toMatchObject({ code: 'ERR_RUNTIME_NOT_FOUND', message: expect.stringContaining('error connecting') });
    expect(calls[0]?.slice(0, 3)).toEqual(['-L', 'nope', 'list-sessions']);
    expect(new TmuxServer({ path: '/s' }, { run }).argv(['ls'])).toEqual(['-S', '/s', 'ls']);
    expect(() => new TmuxServer({ name: 'a', path: '/b' })).toThrow(/not both/);
  });
});
