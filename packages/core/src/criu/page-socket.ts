/**
 * The socket between ferry and a CRIU process that speaks the page-server protocol (`criu lazy-pages --page-server`,
 * `criu page-server`), handed to CRIU with `--ps-socket FD`: nothing listens, nobody else can connect.
 *
 * It is a TCP pair over 127.0.0.1 in a network namespace of its own (created for it, holding nothing else; the
 * listener that made the pair is closed before this returns), not a socketpair: TCP's byte counters (tcpCounters),
 * which the kernel keeps with the socket, tell a successor that takes ferry's end back exactly how many bytes its
 * dead predecessor had written and read. With a socketpair, a relay killed in the middle of an answer would leave the
 * daemon's stream at an unknown position.
 *
 * The CRIU child also inherits a duplicate of ferry's end (CRIU_HELD_FERRY_FD): as long as it holds one, ferry's
 * death is never an end of stream to it (CRIU would read a clean close as "done"), and reclaimFerryEnd() takes the
 * end back from it.
 */
import { readFileSync } from 'node:fs';
import { createNetns, pidfdGetfd, pidfdOpen, tcpLoopbackPair, type FdHandle } from '@ferry/native';
import { FerryError } from '../model/ferry-error';

/** CRIU's end is its fd 3 (`--ps-socket 3`). */
export const CRIU_PS_SOCKET_FD = 3;
/** The duplicate of ferry's end the CRIU child holds. */
export const CRIU_HELD_FERRY_FD = 4;

export interface PageSocketPair {
  /** ferry's end (the accepted end, whose counters are exact). Owned by the caller. */
  ferryEnd: FdHandle;
  /** The end for CRIU's `--ps-socket`. Owned by the caller until a start function takes it (it closes it then). */
  criuEnd: FdHandle;
}

export async function createPageSocketPair(): Promise<PageSocketPair> {
  const netns = await createNetns().catch((cause: unknown) => {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `cannot create a private network namespace for CRIU's page socket: ${(cause as Error).message}`, {
      hint: 'ferry must run as root (CAP_SYS_ADMIN) on a kernel with network namespaces.',
      cause,
    });
  });
  try {
    const [connecting, accepted] = await tcpLoopbackPair(netns);
    return { ferryEnd: accepted, criuEnd: connecting };
  } finally {
    netns.close(); // the two sockets keep the namespace alive, and nothing else can enter it
  }
}

/** The stdio array for spawning CRIU with both ends: fd 3 = CRIU's end, fd 4 = the held copy of ferry's end. */
export function pageSocketStdio(pair: PageSocketPair, holdFerryEnd: boolean): ('ignore' | number)[] {
  return ['ignore', 'ignore', 'ignore', pair.criuEnd.fd, ...(holdFerryEnd ? [pair.ferryEnd.fd] : [])];
}

/**
 * Takes ferry's end back from a CRIU child started with a held copy of it (a new relay after the old one died).
 * `startTime` (field 22 of /proc/PID/stat, from the journal) guards against a reused pid. Throws
 * ERR_CRIU_PAGE_SERVER_FAILED when the process is gone, is another one, or holds no such socket.
 */
export function reclaimFerryEnd(pid: number, startTime?: string): FdHandle {
  const fail = (why: string, cause?: unknown) =>
    new FerryError('ERR_CRIU_PAGE_SERVER_FAILED', `cannot take the page socket back from CRIU process ${pid}: ${why}`, {
      hint: 'The CRIU process that held it is gone: the pages it was serving must be treated as lost.',
      cause,
    });
  let pidfd: FdHandle;
  try {
    pidfd = pidfdOpen(pid);
  } catch (cause) {
    throw fail('no such process', cause);
  }
  try {
    if (startTime !== undefined && processStartTime(pid) !== startTime) throw fail('the pid now belongs to another process');
    try {
      return pidfdGetfd(pidfd, CRIU_HELD_FERRY_FD);
    } catch (cause) {
      throw fail(`it holds no fd ${CRIU_HELD_FERRY_FD}`, cause);
    }
  } finally {
    pidfd.close();
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), undefined once the process is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
