import { parseScreenList, pickScreenSession } from './screen';

describe('screen', () => {
  const ls = 'There are screens on:\n\t8386.work\t(11/27/26 13:28:16)\t(Attached)\n\t9001.work\t(11/27/26 13:29:00)\t(Detached)\n\t9002.misc\t(Detached)\n2 Sockets in /run/screen/S-root.\n';

  test('screen -ls output', () => {
    expect(parseScreenList(ls)).toEqual({
      sessions: [
        { pid: 8386, name: 'work', attached: true },
        { pid: 9001, name: 'work', attached: false },
        { pid: 9002, name: 'misc', attached: false },
      ],
      socketDir: '/run/screen/S-root',
    });
    expect(parseScreenList('No Sockets found in /run/screen/S-root.\n')).toEqual({ sessions: [], socketDir: '/run/screen/S-root' });
  });

  test('picks one session by NAME or PID.NAME', () => {
    const list = parseScreenList(ls);
    expect(pickScreenSession(list, 'misc').pid).toBe(9002);
    expect(pickScreenSession(list, '9001.work').pid).toBe(9001);
    expect(() => pickScreenSession(list, 'work')).toThrow(/2 screen sessions/);
    expect(() => pickScreenSession(list, 'none')).toThrow(/no screen session/);
  });
});
