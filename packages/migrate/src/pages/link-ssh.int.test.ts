/**
 * The page link over a real OpenSSH server (the sandbox hosts of scripts/sandbox-hosts.sh, own instance): the source
 * in h1 opens a direct-streamlocal channel through h2's sshd to the relay's link socket in a 0700 directory; no port
 * is listened on for it. The SSH connection is dropped in the middle (as a network failure would) and the source
 * comes back over a new one. Root; runs the built packages (npx tsc -b) in h1's network namespace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { acceptSocket, listenUnix, StreamSocket } from '@ferry/core';
import { LinkRequester, type LinkEvent } from './link-requester';

jest.setTimeout(180_000);

const ROOT = resolve(__dirname, '..', '..', '..', '..');
const PREFIX = /^[a-z]{1,6}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? process.env.FERRY_E2E_PREFIX! : 'fe';
const NAME = `${PREFIX}link${process.env.JEST_WORKER_ID ?? '0'}`.slice(0, 10);
const SANDBOX_DIR = `/run/ferry-sandbox-${NAME}`;
const env = { ...process.env, FERRY_SANDBOX_NAME: NAME, FERRY_SANDBOX_DIR: SANDBOX_DIR };
const sandbox = (...args: string[]) => {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'sandbox-hosts.sh'), ...args], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`sandbox-hosts.sh ${args.join(' ')}: ${r.stderr}`);
};

/** Source side in h1: serves made-up pages over SSH; drops its first SSH connection after `cutAfter` bytes. */
const SOURCE = `
const m = require(${JSON.stringify(join(ROOT, 'packages/migrate/dist/index.js'))});
const [relayDir, cutAfter] = process.argv.slice(1);
const destination = { name: 'h2', address: '10.231.0.2', port: 22, user: 'root', source: 'test',
  identityFiles: [${JSON.stringify(`${SANDBOX_DIR}/client_ed25519`)}], knownHostsFiles: [${JSON.stringify(`${SANDBOX_DIR}/known_hosts`)}] };
let connections = 0; let sent = 0; let current;
m.serveSourcePages({
  migrationId: 'm-ssh', retryMs: 200,
  memory: { read: async (g) => {
    const b = Buffer.alloc(g.nrPages * 4096, Number(g.vaddr >> 12n) & 0xff);
    sent += b.length;
    if (connections === 1 && sent > Number(cutAfter)) current.destroy();
    return b;
  } },
  dial: async () => { current = await m.SshConnection.connect({ destination }); connections++; return m.dialRelayOverSsh(current, relayDir); },
}).then((s) => { console.log(JSON.stringify({ connections, ...s })); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
`;

let dir: string;
beforeAll(() => sandbox('up'));
afterAll(() => sandbox('down'));
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-link-ssh-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('GETs go through sshd to a unix socket in a 0700 directory, and survive a dropped SSH connection', async () => {
  const relayDir = join(dir, 'relay');
  mkdirSync(relayDir, { mode: 0o700 });
  const events: LinkEvent[] = [];
  const requester = new LinkRequester({ session: 'm-ssh', onEvent: (e) => events.push(e) });
  const listener = listenUnix(join(relayDir, 'link.sock'));
  let listening = true;
  void (async () => {
    while (listening) {
      try {
        requester.attachSocket(StreamSocket.adopt(await acceptSocket(listener, 500)));
      } catch {
        /* timeout: look again */
      }
    }
  })();
  const source = spawn('nsenter', [`--net=/run/netns/${NAME}-h1`, process.execPath, '-e', SOURCE, relayDir, String(24 << 20)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  source.stdout.on('data', (c: Buffer) => (out += c));
  source.stderr.on('data', (c: Buffer) => (out += c));
  try {
    const gets = Array.from({ length: 64 }, (_, i) => ({ pid: 1, vaddr: BigInt(i) << 20n, nrPages: 256, urgent: i % 8 === 0 }));
    const answers = await Promise.all(gets.map((g) => requester.get(g)));
    answers.forEach((a, i) => expect(a.equals(Buffer.alloc(1 << 20, Number(gets[i]!.vaddr >> 12n) & 0xff))).toBe(true));
    await requester.finish();
    const code = await new Promise((r) => source.once('exit', r));
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(JSON.parse(out.trim().split('\n').at(-1)!).connections).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => e.type === 'link-down')).toBe(true);
    expect(events.filter((e) => e.type === 'link-up').length).toBeGreaterThanOrEqual(2);
  } finally {
    listening = false;
    source.kill('SIGKILL');
    requester.close();
    listener.close();
  }
});
