/**
 * One SSH connection (ssh2) to a destination, with strict host-key checking and key or agent authentication.
 *
 * Contract: connect() resolves with an authenticated connection or throws ERR_TRANSPORT_*; nothing is run on the
 * remote side before the host key was verified. close() ends every channel; a dropped connection is reported once
 * through `closed`.
 */
import { readFileSync } from 'node:fs';
import { Client, type CipherAlgorithm, type ClientChannel, type ConnectConfig } from 'ssh2';
import { FerryError } from '@ferry/core';
import type { Destination } from '../hosts/resolve-host';
import { verifyHostKey } from './known-hosts';
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
  ) {}

  static async connect(options: SshConnectOptions): Promise<SshConnection> {
    const { destination } = options;
    const client = new Client();
    let hostKeyError: FerryError | undefined;
    const identity = readIdentity(destination.identityFiles);
    const config: ConnectConfig = {
      host: destination.address,
      port: destination.port,
      username: destination.user,
      readyTimeout: options.readyTimeoutMs ?? 15_000,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      algorithms: { cipher: CIPHERS },
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
    if (identity) config.privateKey = identity;
    if (options.agentSocket) config.agent = options.agentSocket;
    const ready = new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('error', (err) => reject(hostKeyError ?? translateError(err, destination, identity !== undefined || options.agentSocket !== undefined)));
    });
    const onAbort = () => client.end();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.connect(config);
    try {
      await ready;
    } catch (err) {
      client.end();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    const closed = new Promise<Error | undefined>((resolve) => {
      let lastError: Error | undefined;
      client.on('error', (err) => (lastError = err));
      client.once('close', () => resolve(lastError));
    });
    return new SshConnection(client, destination, closed);
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
  }

  /** Drops the TCP connection without a goodbye, as a network failure would (fault tests). */
  destroy(): void {
    (this.client as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
  }
}

function readIdentity(files: readonly string[]): Buffer | undefined {
  for (const file of files) {
    try {
      return readFileSync(file);
    } catch {
      /* try the next one */
    }
  }
  return undefined;
}

export function translateError(err: Error & { level?: string; code?: string }, destination: Destination, hadKey = true): FerryError {
  const where = `${destination.user}@${destination.address}:${destination.port}`;
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
