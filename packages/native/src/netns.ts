import { FdHandle } from './fd-handle';
import { binding } from './load-binding';
import { checkOptions } from './validate';

export type SocketFamily = 'inet' | 'inet6' | 'unix';
export type SocketType = 'stream' | 'dgram' | 'seqpacket';

export const FAMILY_NUMBERS: Readonly<Record<SocketFamily, number>> = { unix: 1, inet: 2, inet6: 10 };
const TYPE_NUMBERS: Readonly<Record<SocketType, number>> = { stream: 1, dgram: 2, seqpacket: 5 };

export interface SocketInNetnsOptions {
  family: SocketFamily;
  type: SocketType;
  /** Bind to this numeric address and port (0: any free port) inside the namespace; inet and inet6 only. */
  bind?: { address: string; port: number };
  /** With bind: listen with this backlog. */
  listen?: number;
}

/**
 * A new network namespace that only its holders can use: nothing but `lo`, which is up (CRIU's kernel probe needs
 * 127.0.0.1). No name in /run/netns: the returned handle (and every socket created in the namespace) keeps it alive,
 * and it disappears with the last of them. Made on a short-lived thread of its own, so no thread of this process
 * changes namespace. Rejects with NativeError (EPERM without CAP_SYS_ADMIN).
 */
export function createNetns(): Promise<FdHandle> {
  return binding()
    .createNetns()
    .then((fd) => new FdHandle(fd));
}

/**
 * A socket that belongs to the network namespace behind `netns` (an fd of /proc/PID/ns/net or from createNetns()),
 * created on a short-lived thread that enters the namespace and leaves it again. A socket stays in the namespace it
 * was created in whichever thread uses it, so it can be connected, wrapped in `new net.Socket({ fd })` or listened
 * on from here. Blocking, CLOEXEC; the caller owns the returned handle. `netns` is only borrowed.
 */
export async function socketInNetns(netns: FdHandle, options: SocketInNetnsOptions): Promise<FdHandle> {
  if (!(netns instanceof FdHandle)) throw new TypeError('socketInNetns: netns must be an FdHandle');
  return makeSocket('socketInNetns', netns.fd, options);
}

/** The same in this process's own network namespace (no namespace change, no privilege needed). */
export function createSocket(options: SocketInNetnsOptions): Promise<FdHandle> {
  return makeSocket('createSocket', -1, options);
}

async function makeSocket(fn: string, netnsFd: number, options: SocketInNetnsOptions): Promise<FdHandle> {
  const o = checkOptions<SocketInNetnsOptions>(fn, options, ['family', 'type', 'bind', 'listen']);
  const family = FAMILY_NUMBERS[o.family];
  const type = TYPE_NUMBERS[o.type];
  if (family === undefined) throw new RangeError(`${fn}: family must be one of ${Object.keys(FAMILY_NUMBERS).join(', ')}`);
  if (type === undefined) throw new RangeError(`${fn}: type must be one of ${Object.keys(TYPE_NUMBERS).join(', ')}`);
  if (o.bind !== undefined) {
    if (o.family === 'unix') throw new RangeError(`${fn}: bind is for inet and inet6 sockets`);
    if (typeof o.bind.address !== 'string' || !Number.isInteger(o.bind.port) || o.bind.port < 0 || o.bind.port > 65535) {
      throw new TypeError(`${fn}: bind must be { address: numeric string, port: 0..65535 }`);
    }
  }
  if (o.listen !== undefined && (o.bind === undefined || !Number.isInteger(o.listen) || o.listen < 1)) {
    throw new RangeError(`${fn}: listen needs bind and a backlog >= 1`);
  }
  const fd = await binding().socketInNetns(netnsFd, family, type, o.bind?.address ?? null, o.bind?.port ?? 0, o.listen ?? 0);
  return new FdHandle(fd);
}
