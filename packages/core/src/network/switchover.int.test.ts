// A switch-over without the engine (root): a TCP echo server in a namespace plugged into a bridge, a client on the
// bridge pinging it every 10 ms. The server is stopped (SIGSTOP) while its namespace's traffic is either held
// (PacketHold) or lost (DROP rules: what a fenced or not-yet-plugged namespace does), and continued (SIGCONT) right
// after the client has retransmitted twice, so its next retransmission is at least 0.8 s away.
//
// The claim, as causality rather than timing: with the hold the client is answered as soon as the hold is released,
// before its retransmission timer fires again; without it, only once that timer has fired (the LAN namespace's
// TCPTimeouts counter: the client is its only TCP user). The gaps are printed, not asserted.
import { createNetnsLab, LineLog, netFixture, snmpCounter, type NetnsLab } from '../testing/netns-lab';
import { holdNetnsTraffic } from './index';

const PREFIX = /^[a-z]{1,8}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? process.env.FERRY_E2E_PREFIX! : 'ferryint';
const SEARCH_PATH = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
const PORT = 8080;
const root = process.getuid?.() === 0;
const maybe = root ? describe : describe.skip;
if (!root) console.log('switchover.int.test.ts skipped: needs root (network namespaces, iptables, NFQUEUE)');

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

maybe('switch-over of a TCP server: held vs lost traffic', () => {
  let lab: NetnsLab;
  beforeEach(async () => {
    lab = await createNetnsLab(PREFIX);
  });
  afterEach(async () => {
    await lab.remove();
  });

  /** The client's total retransmissions on its connection (ss's "retrans:CURRENT/TOTAL"). */
  const clientRetransmissions = async () => {
    const out = await lab.exec(lab.lanPath, ['ss', '-tin', 'dst', `${lab.serverAddress}:${PORT}`]);
    return Number(/retrans:\d+\/(\d+)/.exec(out)?.[1] ?? 0);
  };

  async function switchOver(mode: 'hold' | 'drop') {
    const timersFired = () => snmpCounter(lab, lab.lanPath, 'TcpExt', 'TCPTimeouts');
    const server = lab.spawnIn(lab.serverPath, [process.execPath, netFixture('echo-server'), lab.serverAddress, String(PORT)]);
    await new LineLog(server).waitFor(/^listening$/);
    const answers = new LineLog(lab.spawnIn(lab.lanPath, [process.execPath, netFixture('ping-client'), lab.serverAddress, String(PORT), '10']));
    await answers.waitFor(/^answer 20 /);

    const cut = async () => {
      if (mode === 'hold') return holdNetnsTraffic({ netnsPath: lab.serverPath, searchPath: SEARCH_PATH });
      for (const [chain, dir] of [['INPUT', '-i'], ['OUTPUT', '-o']]) await lab.exec(lab.serverPath, ['iptables', '-I', chain!, '1', '!', dir!, 'lo', '-j', 'DROP']);
      return undefined;
    };
    const hold = await cut();
    const before = await timersFired();
    await sleep(50); // the server answers what reached it before the cut
    server.kill('SIGSTOP');
    let fired = before;
    for (let i = 0; i < 600 && fired < before + 2; i++) {
      await sleep(10);
      fired = await timersFired();
    }
    expect(fired).toBeGreaterThanOrEqual(before + 2);
    if (hold) expect(hold.heldCount).toBeGreaterThan(0);

    server.kill('SIGCONT');
    const from = answers.lines.length;
    const atRelease = await timersFired();
    const retransmittedAtRelease = await clientRetransmissions();
    const releasedAt = Date.now();
    const released = hold ? await hold.release() : undefined;
    if (!hold) for (const chain of ['INPUT', 'OUTPUT']) await lab.exec(lab.serverPath, ['iptables', '-F', chain]);
    const line = await answers.waitFor(/^answer /, { from });
    const afterAnswer = await timersFired();
    const gapMs = Number(line.split(' ')[2]) - releasedAt;
    console.log(`${mode}: client answered ${gapMs} ms after the release; retransmission timers fired ${atRelease} -> ${afterAnswer}; retransmissions ${retransmittedAtRelease} -> ${await clientRetransmissions()}` +
        (released ? `; held ${JSON.stringify(released.held)}, verdict applied in ${released.verdictMs} ms, rules gone in ${released.decisionMs} ms` : ''));
    return { atRelease, afterAnswer, gapMs };
  }

  test('held: the client is answered at the release, before its retransmission timer fires again', async () => {
    const { atRelease, afterAnswer } = await switchOver('hold');
    expect(afterAnswer).toBe(atRelease);
  });

  test('lost (the baseline): the client is answered only after its retransmission timer fires again', async () => {
    const { atRelease, afterAnswer } = await switchOver('drop');
    expect(afterAnswer).toBeGreaterThan(atRelease);
  });
});
