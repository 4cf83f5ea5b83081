/**
 * One SSH connection (ssh2) to a destination, with strict host-key checking and key or agent authentication.
 *
 * Contract: connect() resolves with an authenticated connection or throws ERR_TRANSPORT_*; nothing is run on the
 * remote side before the host key was verified. close() ends every channel; a dropped connection is reported once
 * through `closed`.
 */
import { Client, type CipherAlgorithm, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { FerryError } from '@ferry/core';
import type { Destination } from '../hosts/resolve-host';
import { hostKeyAlgorithms, verifyHostKey } from './known-hosts';
import { loadIdentity, type IdentityProblem } from './ssh-identity';
import { shellCommand } from './shell-quote';

export interface SshConnectOptions {
  destination: Destination;
  /** ssh-agent socket (the CLI passes SSH_AUTH_SOCK). */
  agentSocket?: string;
  acceptNewHostKey?: boolean;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

/** AES-GCM first: AES-NI makes it the fastest cipher on the hosts we measured (see LAB.md). */
const CIPHERS: CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'];

/** ssh2 streams default to 64 KiB buffers; 1 MiB moves ~1.5x more data per second. */
export const CHANNEL_HIGH_WATER_MARK = 1 << 20;

export class SshConnection {
  private constructor(
    private readonly client: Client,
    readonly destination: Destination,
    readonly closed: Promise<Error | undefined>,
    /** The connection to the jump host this one goes through (ProxyJump), closed with it. */
    private readonly via?: SshConnection,
  ) {}

  static async connect(options: SshConnectOptions): Promise<SshConnection> {
    const { destination } = options;
    if (options.signal?.aborted) throw abortedWhileConnecting(destination);
    const identity = loadIdentity(destination.identityFiles);
    if (!identity.privateKey && !options.agentSocket && identity.problems.length > 0) throw unusableKeys(destination, identity.problems);
    // ProxyJump: the connection to the jump host first (its own host key checked), then a tunnel through it.
    let via: SshConnection | undefined;
    let sock: ClientChannel | undefined;
    if (destination.jump) {
      via = await SshConnection.connect({ ...options, destination: destination.jump });
      try {
        sock = await via.forwardOut(destination.address, destination.port);
      } catch (err) {
        via.close();
        throw err;
      }
    }
    const client = new Client();
    let hostKeyError: FerryError | undefined;
    const config: ConnectConfig = {
      host: destination.address,
      port: destination.port,
      username: destination.user,
      readyTimeout: options.readyTimeoutMs ?? 15_000,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      algorithms: { cipher: CIPHERS, serverHostKey: hostKeyAlgorithms(destination.knownHostsFiles, destination.address, destination.port) as ServerHostKeyAlgorithm[] },
      ...(sock ? { sock } : {}),
      hostVerifier: (key: Buffer) => {
        try {
          verifyHostKey(destination.address, destination.port, key, {
            knownHostsFiles: destination.knownHostsFiles,
            acceptNew: options.acceptNewHostKey,
          });
          return true;
        } catch (err) {
          hostKeyError = err as FerryError;
          return false;
        }
      },
    };
    if (identity.privateKey) config.privateKey = identity.privateKey;
    if (options.agentSocket) config.agent = options.agentSocket;
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', () => {
        // The agent protocol is small requests and answers. With Nagle's algorithm a small frame waits while an earlier
        // one is unacknowledged, and the far end delays its ACK by up to 40 ms: measured, each small upload in the
        // freeze (the bundle's resync, the images) took 50-90 ms instead of 10-15. Bulk data is sent in full packets
        // either way. (Through a jump host only the tunnel's own socket is ours; this sets it on the first hop.)
        client.setNoDelay(true);
        resolve();
      });
      client.once('error', (err) =>
        reject(options.signal?.aborted ? abortedWhileConnecting(destination) : (hostKeyError ?? translateError(err, destination, identity.privateKey !== undefined || options.agentSocket !== undefined, identity.problems))),
      );
      // ssh2 ends a connection that end() stops before it is ready with 'close' alone: without this, an abort while
      // connecting left the move waiting forever (its guardian stuck in `connect`, the container's move lock held).
      client.once('close', () => reject(options.signal?.aborted ? abortedWhileConnecting(destination) : new FerryError('ERR_TRANSPORT_CONNECT_FAILED', `the connection to ${destination.name} closed before it was ready`, { hint: 'Check that sshd runs on that host and accepts connections.' })));
    });
    ready.catch(() => undefined); // observed below; a synchronous failure of connect() must not leave it unhandled
    const onAbort = () => client.destroy(); // at once: end() would wait for a server that may never answer
    if (options.signal?.aborted) {
      // Aborted while the jump host was being reached: a listener added now would never fire.
      via?.close();
      throw abortedWhileConnecting(destination);
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.connect(config); // throws at once on what it cannot use (a key it cannot parse, a bad port)
      await ready;
    } catch (err) {
      client.on('error', () => undefined); // ssh2 may still report the handshake it never finished: nobody listens now
      client.end();
      via?.close();
      throw err instanceof FerryError ? err : translateError(err as Error, destination, true, identity.problems);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    const closed = new Promise<Error | undefined>((resolve) => {
      let lastError: Error | undefined;
      client.on('error', (err) => (lastError = err));
      client.once('close', () => resolve(lastError));
    });
    if (via) void closed.then(() => via.close());
    return new SshConnection(client, destination, closed, via);
  }

  /** Runs argv on the destination (quoted for its shell); the channel's stdin/stdout carry the conversation. */
  exec(argv: readonly string[]): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(shellCommand(argv), (err, channel) => {
        if (err) reject(new FerryError('ERR_TRANSPORT_CLOSED', `cannot open an SSH channel to ${this.destination.name}: ${err.message}`, { cause: err }));
        else resolve(channel);
      });
    });
  }

  /** A TCP connection from the destination to address:port on its side, tunnelled through this connection. */
  forwardOut(address: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, address, port, (err, channel) => {
        if (err) reject(new FerryError('ERR_TRANSPORT_CLOSED', `cannot forward to ${address}:${port} on ${this.destination.name}: ${err.message}`, { cause: err }));
        else resolve(channel);
      });
    });
  }

  /**
   * A connection to the unix socket at `path` on the destination (OpenSSH's direct-streamlocal): sshd connects as the
   * logged-in user, so a socket in a 0700 directory of that user is reachable this way and by nobody else. No port.
   */
  forwardOutStreamLocal(path: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(path, (err, channel) => {
        if (err) {
          reject(new FerryError('ERR_TRANSPORT_CLOSED', `cannot reach ${path} on ${this.destination.name}: ${err.message}`, {
            hint: 'The destination sshd must allow stream-local forwarding (AllowStreamLocalForwarding yes, the default).',
            cause: err,
          }));
        } else resolve(channel);
      });
    });
  }

  /**
   * Listens on address:port on the destination (port 0: any) and hands each connection made there to onConnection,
   * as a channel. Resolves with the port the destination bound.
   */
  forwardIn(address: string, port: number, onConnection: (channel: ClientChannel) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.client.forwardIn(address, port, (err, bound) => {
        if (err) {
          reject(new FerryError('ERR_TRANSPORT_CLOSED', `cannot listen on ${address}:${port} on ${this.destination.name}: ${err.message}`, {
            hint: 'The destination sshd must allow TCP forwarding (AllowTcpForwarding yes).',
            cause: err,
          }));
          return;
        }
        const boundPort = bound || port;
        this.client.on('tcp connection', (info, accept, refuse) => {
          if (info.destPort !== boundPort) return refuse();
          onConnection(accept());
        });
        resolve(boundPort);
      });
    });
  }

  close(): void {
    this.client.end();
    this.via?.close();
  }

  /** Drops the TCP connection without a goodbye, as a network failure would (fault tests). */
  destroy(): void {
    (this.client as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
  }
}

function abortedWhileConnecting(destination: Destination): FerryError {
  return new FerryError('ERR_ABORTED', `interrupted while connecting to ${destination.name}`, { hint: 'Nothing was frozen; the source container keeps running.' });
}

function unusableKeys(destination: Destination, problems: readonly IdentityProblem[]): FerryError {
  const where = `${destination.user}@${destination.address}:${destination.port}`;
  return new FerryError('ERR_TRANSPORT_AUTH_FAILED', `no usable SSH key for ${where}: ${problems.map((p) => p.why).join('; ')}`, {
    hint: problems.map((p) => p.hint).join(' '),
    details: { files: problems.map((p) => p.file) },
  });
}

export function translateError(err: Error & { level?: string; code?: string }, destination: Destination, hadKey = true, problems: readonly IdentityProblem[] = []): FerryError {
  const where = `${destination.user}@${destination.address}:${destination.port}`;
  if (err.level === 'client-authentication' && problems.length > 0) {
    // Keys were skipped and what was offered (the agent's) did not do: the skipped ones are the likely cause.
    const cause = unusableKeys(destination, problems);
    return new FerryError('ERR_TRANSPORT_AUTH_FAILED', `${where} refused what ssh-agent offered, and ${cause.message.replace(/^no usable SSH key for \S+: /, '')}`, { hint: cause.hint, cause: err });
  }
  if (/no matching host key/i.test(err.message)) {
    return new FerryError('ERR_TRANSPORT_CONNECT_FAILED', `${where} offers no host-key algorithm ferry accepts (${err.message})`, {
      hint: 'ferry accepts ed25519, ECDSA and RSA with SHA-2 host keys, not ssh-rsa (SHA-1): give sshd an ed25519 host key or allow rsa-sha2-256/512.',
      cause: err,
    });
  }
  if (err instanceof RangeError || (err as { code?: string }).code === 'ERR_SOCKET_BAD_PORT') {
    return new FerryError('ERR_PRECHECK_BAD_INPUT', `cannot connect to ${where}: ${err.message}`, { hint: 'Ports are 1-65535; check the hosts file or ~/.ssh/config.', cause: err });
  }
  if (err.level === 'client-authentication' && !hadKey) {
    return new FerryError('ERR_TRANSPORT_AUTH_FAILED', `no SSH key for ${where}`, {
      hint: `None of ${destination.identityFiles.join(', ')} is readable and no ssh-agent is running; add identityFile to the hosts file or start ssh-agent.`,
      cause: err,
    });
  }
  if (err.level === 'client-authentication') {
    return new FerryError('ERR_TRANSPORT_AUTH_FAILED', `${where} refused our key`, {
      hint: `Add the public key of ${destination.identityFiles[0] ?? 'your identity'} to ${destination.user}'s authorized_keys on ${destination.address}.`,
      cause: err,
    });
  }
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
    return new FerryError('ERR_TRANSPORT_UNKNOWN_HOST', `unknown host "${destination.name}" (${destination.address} does not resolve)`, {
      hint: 'Check the name, or add it to /etc/ferry/hosts.yaml or ~/.ssh/config.',
      cause: err,
    });
  }
  const timeout = err.level === 'client-timeout' || err.code === 'ETIMEDOUT' || /Timed out/i.test(err.message);
  return new FerryError('ERR_TRANSPORT_CONNECT_FAILED', `cannot reach ${where}: ${timeout ? 'timed out' : err.message}`, {
    hint: 'Check that the host is up, sshd listens on that port, and no firewall is in the way.',
    cause: err,
  });
}
