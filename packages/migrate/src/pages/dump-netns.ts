/**
 * The source's side of a private page path (issue 14 item 1): a lazy dump runs inside a network namespace of its own,
 * so CRIU's page server (which runc makes listen on every interface of wherever CRIU runs, whatever address it is
 * given) is reachable from that namespace only. Nobody else is in it and entering it needs CAP_SYS_ADMIN; ferry
 * reaches the page server by making its socket in the namespace (native socketInNetns).
 *
 * Recovery, after the process that made the namespace died, enters it through a dump process still inside it.
 */
import { openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { FdHandle, FerryError, acceptSocket, connectSocket, createNetns, socketInNetns, socketName } from '@ferry/core';

const DIAL_TIMEOUT_MS = 10_000;
/** How long a dump has to connect to its page server (CRIU connects first thing). */
const ACCEPT_TIMEOUT_MS = 60_000;

export interface DumpNetns {
  /** What nsenter --net= takes (this process's fd of the namespace); valid while the handle is open. */
  readonly path: string;
  /** A connection to 127.0.0.1:port inside the namespace. */
  dial(port: number): Promise<Socket>;
  /** A listener on 127.0.0.1 in the namespace, for a dump's page client (streamed stop-and-copy). */
  listen(): Promise<NetnsListener>;
  /** The namespace lives on while CRIU runs in it. */
  close(): void;
}

export interface NetnsListener {
  port: number;
  /** The first connection (CRIU's); the listener is closed then. */
  accepted: Promise<Socket>;
  /** Ends a pending accept (by connecting to it) and drops what it gets. */
  close(): void;
}

export async function createDumpNetns(): Promise<DumpNetns> {
  const netns = await createNetns().catch((cause: unknown) => {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `cannot create a private network namespace for the lazy dump's page server: ${(cause as Error).message}`, {
      hint: 'ferry must run as root (CAP_SYS_ADMIN) on a kernel with network namespaces.',
      cause,
    });
  });
  const dial = (port: number) => dialInNetns(netns, port);
  return { path: `/proc/${process.pid}/fd/${netns.fd}`, dial, listen: () => listenInNetns(netns, dial), close: () => netns.close() };
}

async function listenInNetns(netns: FdHandle, dial: (port: number) => Promise<Socket>): Promise<NetnsListener> {
  const listener = await socketInNetns(netns, { family: 'inet', type: 'stream', bind: { address: '127.0.0.1', port: 0 }, listen: 1 });
  const { port } = socketName(listener);
  let waiting = true;
  let closing = false;
  // Closed only once no pool thread waits on it (its fd number could be reused meanwhile).
  const accepted = acceptSocket(listener, ACCEPT_TIMEOUT_MS)
    .finally(() => {
      waiting = false;
      listener.close();
    })
    .then((h) => {
      const socket = new Socket({ fd: h.release(), readable: true, writable: true });
      if (closing) socket.destroy();
      return socket;
    });
  accepted.catch(() => undefined);
  return {
    port,
    accepted,
    close() {
      if (waiting && !closing) void dial(port).then((s) => s.destroy(), () => undefined);
      closing = true;
    },
  };
}

/**
 * Whether the container (init `pid`) has a network namespace of its own. CRIU dumps a task's network namespace
 * whenever it differs from CRIU's own: run in a private namespace, it would dump this host's network for a container
 * that shares it. Such containers get no private page path.
 */
export function hasOwnNetns(pid: number | undefined): boolean {
  try {
    return pid !== undefined && statSync(`/proc/${pid}/ns/net`).ino !== statSync('/proc/self/ns/net').ino;
  } catch {
    return false;
  }
}

/** A lazy dump needs a private namespace: refused (with what to do instead) for a container in the host's. */
export function assertLazyDumpable(pid: number | undefined, name: string): void {
  if (hasOwnNetns(pid)) return;
  throw new FerryError('ERR_PRECHECK_UNSUPPORTED_CONFIG', `${name} shares this host's network namespace: its lazy dump cannot run in a private one, and ferry opens no page server other local users could reach`, {
    hint: 'Use --strategy stop-and-copy for containers on the host network.',
  });
}

/**
 * Recovery: connects to 127.0.0.1:port in the private namespace a dump runs in, entered through the first of `pids`
 * (the dump's processes) that is in a network namespace other than this process's.
 */
export async function dialLazyDumpOf(pids: readonly number[], port: number): Promise<Socket> {
  const own = statSync('/proc/self/ns/net').ino;
  const inside = pids.find((pid) => {
    try {
      return statSync(`/proc/${pid}/ns/net`).ino !== own;
    } catch {
      return false;
    }
  });
  if (inside === undefined) throw new Error(`no process of the lazy dump (${pids.join(', ')}) is in its private network namespace`);
  const netns = new FdHandle(openSync(`/proc/${inside}/ns/net`, 'r'));
  try {
    return await dialInNetns(netns, port);
  } finally {
    netns.close();
  }
}

async function dialInNetns(netns: FdHandle, port: number): Promise<Socket> {
  const socket = await socketInNetns(netns, { family: 'inet', type: 'stream' });
  try {
    await connectSocket(socket, 'inet', '127.0.0.1', port, DIAL_TIMEOUT_MS);
  } catch (err) {
    socket.close();
    throw err;
  }
  return new Socket({ fd: socket.release(), readable: true, writable: true });
}
