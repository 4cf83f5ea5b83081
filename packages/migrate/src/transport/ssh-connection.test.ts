/**
 * SshConnection against an in-process ssh2 server on 127.0.0.1: host-key policy, authentication, exec, errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Server, utils, type Connection } from 'ssh2';
import type { Destination } from '../hosts/resolve-host';
import { fingerprint, knownHostsName } from './known-hosts';
import { SshConnection } from './ssh-connection';

let dir: string;
let server: Server;
let port: number;
let hostKey: ReturnType<typeof utils.generateKeyPairSync>;
let clientKey: ReturnType<typeof utils.generateKeyPairSync>;
const execs: string[] = [];
const serverSide: Connection[] = [];

function publicBlob(pub: string): Buffer {
  const parsed = utils.parseKey(pub);
  if (parsed instanceof Error) throw parsed;
  return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
}

beforeAll(async () => {
  hostKey = utils.generateKeyPairSync('ed25519');
  clientKey = utils.generateKeyPairSync('ed25519');
  const allowed = publicBlob(clientKey.public);
  server = new Server({ hostKeys: [hostKey.private] }, (client: Connection) => {
    serverSide.push(client);
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && ctx.key.data.equals(allowed)) ctx.accept();
      else ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          execs.push(info.command);
          const stream = acceptExec();
          stream.write(`ran: ${info.command}\n`);
          stream.exit(0);
          stream.end();
        });
      });
    });
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const c of serverSide) c.end();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-ssh-'));
  // 0600 like ssh-keygen writes them: a key others can read is ignored (ssh-hardening.test.ts).
  writeFileSync(join(dir, 'id'), clientKey.private, { mode: 0o600 });
  writeFileSync(join(dir, 'other'), utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function destination(overrides: Partial<Destination> = {}): Destination {
  return {
    name: 'test',
    address: '127.0.0.1',
    port,
    user: 'root',
    identityFiles: [join(dir, 'id')],
    knownHostsFiles: [join(dir, 'known_hosts')],
    source: 'test',
    ...overrides,
  };
}

function trustHostKey(blob = publicBlob(hostKey.public)): void {
  writeFileSync(join(dir, 'known_hosts'), `${knownHostsName('127.0.0.1', port)} ssh-ed25519 ${blob.toString('base64')}\n`);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

test('connects to a known host and runs argv quoted for the remote shell', async () => {
  trustHostKey();
  const ssh = await SshConnection.connect({ destination: destination() });
  const channel = await ssh.exec(['ferry', 'agent', "it's; rm -rf /"]);
  expect(await readAll(channel)).toBe(`ran: ferry agent 'it'\\''s; rm -rf /'\n`);
  ssh.close();
});

test('an unknown host key is refused with its fingerprint, or recorded with acceptNewHostKey', async () => {
  await expect(SshConnection.connect({ destination: destination() })).rejects.toMatchObject({
    code: 'ERR_TRANSPORT_HOST_KEY_UNKNOWN',
    message: expect.stringContaining(fingerprint(publicBlob(hostKey.public))),
    hint: expect.stringContaining('--accept-new-host-key'),
  });
  const ssh = await SshConnection.connect({ destination: destination(), acceptNewHostKey: true });
  ssh.close();
  expect(readFileSync(join(dir, 'known_hosts'), 'utf8')).toContain(`[127.0.0.1]:${port} ssh-ed25519 `);
  (await SshConnection.connect({ destination: destination() })).close();
});

test('a changed host key is refused even with acceptNewHostKey', async () => {
  trustHostKey(publicBlob(utils.generateKeyPairSync('ed25519').public));
  await expect(SshConnection.connect({ destination: destination(), acceptNewHostKey: true })).rejects.toMatchObject({
    code: 'ERR_TRANSPORT_HOST_KEY_CHANGED',
  });
});

test('a refused key is ERR_TRANSPORT_AUTH_FAILED', async () => {
  trustHostKey();
  await expect(SshConnection.connect({ destination: destination({ identityFiles: [join(dir, 'other')] }) })).rejects.toMatchObject({
    code: 'ERR_TRANSPORT_AUTH_FAILED',
  });
});

test('no key at all is ERR_TRANSPORT_AUTH_FAILED, saying so', async () => {
  trustHostKey();
  await expect(SshConnection.connect({ destination: destination({ identityFiles: [join(dir, 'missing')] }) })).rejects.toMatchObject({
    code: 'ERR_TRANSPORT_AUTH_FAILED',
    message: expect.stringContaining('no SSH key'),
  });
});

test('a closed port is ERR_TRANSPORT_CONNECT_FAILED', async () => {
  const probe = new Server({ hostKeys: [hostKey.private] }, () => undefined);
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const freePort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  await expect(SshConnection.connect({ destination: destination({ port: freePort }) })).rejects.toMatchObject({
    code: 'ERR_TRANSPORT_CONNECT_FAILED',
  });
});

test('an abort while connecting ends the attempt with ERR_ABORTED (a server that never answers)', async () => {
  const held: Socket[] = [];
  const silent = createServer((sock) => held.push(sock)); // accepts and says nothing: the handshake never ends
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const abort = new AbortController();
    const attempt = SshConnection.connect({ destination: destination({ port: (silent.address() as AddressInfo).port }), signal: abort.signal, readyTimeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // Already aborted: refused before any connection is made.
    await expect(SshConnection.connect({ destination: destination(), signal: abort.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  } finally {
    for (const sock of held) sock.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});
