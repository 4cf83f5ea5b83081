/**
 * SSH as a hostile or careless setup meets it (#14 items 10-11): identities with a passphrase, loose permissions or
 * garbage, host keys of another type, SHA-1 RSA host keys, ProxyJump. Against in-process ssh2 servers on 127.0.0.1
 * and a real ssh-agent.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, utils, type Connection, type ServerConfig } from 'ssh2';
import type { Destination } from '../hosts/resolve-host';
import { knownHostsName } from './known-hosts';
import { SshConnection } from './ssh-connection';

type KeyPair = ReturnType<typeof utils.generateKeyPairSync>;

function publicBlob(pub: string): Buffer {
  const parsed = utils.parseKey(pub);
  if (parsed instanceof Error) throw parsed;
  return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
}

interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** An sshd stand-in: accepts `allowed` client keys, runs no command but answers exec, forwards direct-tcpip. */
async function startServer(hostKeys: string[], allowed: Buffer[], algorithms?: ServerConfig['algorithms']): Promise<TestServer> {
  const clients: Connection[] = [];
  const server = new Server({ hostKeys, ...(algorithms ? { algorithms } : {}) }, (client: Connection) => {
    clients.push(client);
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && allowed.some((a) => a.equals(ctx.key.data))) ctx.accept();
      else ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const stream = acceptExec();
          stream.end('ok\n');
          stream.exit(0);
        });
      });
      client.on('tcpip', (accept, _reject, info) => {
        const channel = accept();
        const socket = connect(info.destPort, info.destIP);
        channel.pipe(socket).pipe(channel);
        socket.on('error', () => channel.destroy());
        channel.on('error', () => socket.destroy());
      });
    });
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const c of clients) c.end();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let dir: string;
let hostKey: KeyPair;
let clientKey: KeyPair;
let server: TestServer;
beforeAll(async () => {
  hostKey = utils.generateKeyPairSync('ed25519');
  clientKey = utils.generateKeyPairSync('ed25519');
  server = await startServer([hostKey.private], [publicBlob(clientKey.public)]);
});
afterAll(() => server.close());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-ssh-hard-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function trust(port: number, pub: string, type = 'ssh-ed25519', file = join(dir, 'known_hosts')): void {
  writeFileSync(file, `${knownHostsName('127.0.0.1', port)} ${type} ${publicBlob(pub).toString('base64')}\n`, { flag: 'a' });
}

function destination(overrides: Partial<Destination> = {}): Destination {
  return { name: 'test', address: '127.0.0.1', port: server.port, user: 'root', identityFiles: [join(dir, 'id')], knownHostsFiles: [join(dir, 'known_hosts')], source: 'test', ...overrides };
}

async function works(d: Destination, agentSocket?: string): Promise<void> {
  const ssh = await SshConnection.connect({ destination: d, ...(agentSocket ? { agentSocket } : {}) });
  ssh.close();
}

/** The same key as `clientKey`, encrypted with a passphrase (as ssh-keygen -N would write it). */
function encryptedCopy(path: string): void {
  writeFileSync(path, clientKey.private, { mode: 0o600 });
  execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'secret phrase', '-f', path]);
}

describe('identity files', () => {
  test('a passphrase-protected key without an agent: a clear error with a hint, not a crash', async () => {
    trust(server.port, hostKey.public);
    encryptedCopy(join(dir, 'id'));
    await expect(works(destination())).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_AUTH_FAILED',
      message: expect.stringContaining('passphrase'),
      hint: expect.stringContaining('ssh-add'),
    });
  });

  test('a passphrase-protected key that ssh-agent holds: the agent signs', async () => {
    trust(server.port, hostKey.public);
    encryptedCopy(join(dir, 'id'));
    const plain = join(dir, 'plain');
    writeFileSync(plain, clientKey.private, { mode: 0o600 });
    const socket = join(dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100; i++) {
        try {
          execFileSync('ssh-add', ['-q', plain], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50)); // the agent is not listening yet
        }
      }
      await works(destination(), socket);
    } finally {
      agent.kill();
    }
  });

  test('a group- or world-readable key is refused like OpenSSH does, naming the mode and the fix', async () => {
    trust(server.port, hostKey.public);
    writeFileSync(join(dir, 'id'), clientKey.private);
    chmodSync(join(dir, 'id'), 0o644);
    await expect(works(destination())).rejects.toMatchObject({
      code: 'ERR_TRANSPORT_AUTH_FAILED',
      message: expect.stringContaining('0644'),
      hint: expect.stringContaining(`chmod 600 ${join(dir, 'id')}`),
    });
  });

  test('a file that is not a private key: a clear error, not a crash', async () => {
    trust(server.port, hostKey.public);
    writeFileSync(join(dir, 'id'), 'this is not a key\n', { mode: 0o600 });
    await expect(works(destination())).rejects.toMatchObject({ code: 'ERR_TRANSPORT_AUTH_FAILED', message: expect.stringContaining('not a private key') });
  });
});

describe('host keys', () => {
  test('a host known by another of its key types is asked for that type, and connects', async () => {
    const ecdsa = utils.generateKeyPairSync('ecdsa', { bits: 256 });
    const both = await startServer([hostKey.private, ecdsa.private], [publicBlob(clientKey.public)]);
    try {
      writeFileSync(join(dir, 'id'), clientKey.private, { mode: 0o600 });
      trust(both.port, ecdsa.public, 'ecdsa-sha2-nistp256');
      await works(destination({ port: both.port }));
    } finally {
      await both.close();
    }
  });

  test('a host that shows a key of a type not in known_hosts: the error says so, and the hint names the right files', async () => {
    const ecdsa = utils.generateKeyPairSync('ecdsa', { bits: 256 });
    writeFileSync(join(dir, 'id'), clientKey.private, { mode: 0o600 });
    trust(server.port, ecdsa.public, 'ecdsa-sha2-nistp256'); // the server has only its ed25519 key
    const err = await works(destination()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TRANSPORT_HOST_KEY_UNKNOWN', message: expect.stringMatching(/ssh-ed25519.*known_hosts has only ecdsa-sha2-nistp256/) });
    const hint = (err as { hint: string }).hint;
    expect(hint).toContain('/etc/ssh/ssh_host_ed25519_key.pub');
    expect(hint).toContain(join(dir, 'known_hosts'));
    expect(hint).not.toContain('--accept-new-host-key'); // it could not work: the host is known
  });

  test('ssh-rsa (RSA with SHA-1) is not accepted as a host-key algorithm', async () => {
    const rsa = utils.generateKeyPairSync('rsa', { bits: 2048 });
    const sha1 = await startServer([rsa.private], [publicBlob(clientKey.public)], { serverHostKey: ['ssh-rsa'] });
    try {
      writeFileSync(join(dir, 'id'), clientKey.private, { mode: 0o600 });
      trust(sha1.port, rsa.public, 'ssh-rsa');
      await expect(works(destination({ port: sha1.port }))).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONNECT_FAILED' });
      const sha2 = await startServer([rsa.private], [publicBlob(clientKey.public)], { serverHostKey: ['rsa-sha2-256'] });
      try {
        trust(sha2.port, rsa.public, 'ssh-rsa');
        await works(destination({ port: sha2.port }));
      } finally {
        await sha2.close();
      }
    } finally {
      await sha1.close();
    }
  });
});

describe('ProxyJump', () => {
  test('connects through a jump host, each host checked against known_hosts', async () => {
    const jumpKey = utils.generateKeyPairSync('ed25519');
    const jump = await startServer([jumpKey.private], [publicBlob(clientKey.public)]);
    try {
      writeFileSync(join(dir, 'id'), clientKey.private, { mode: 0o600 });
      trust(server.port, hostKey.public);
      const hop = destination({ name: 'jump', port: jump.port });
      // The jump host's key is not known yet: refused, naming the jump host.
      await expect(works(destination({ jump: hop }))).rejects.toMatchObject({ code: 'ERR_TRANSPORT_HOST_KEY_UNKNOWN', message: expect.stringContaining(`${jump.port}`) });
      trust(jump.port, jumpKey.public);
      await works(destination({ jump: hop }));
    } finally {
      await jump.close();
    }
  });
});
