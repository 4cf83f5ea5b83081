/**
 * Running a tool inside a network namespace that has no name (one from createNetns(), held only by an fd): the fd is
 * handed to the child at a fixed position of its stdio and `nsenter --net=/proc/self/fd/N` enters it. Dump tools run
 * this way (docs/design/crash-safety.md section 4): whatever CRIU listens on in there, only ferry can reach.
 */
import { findExecutable } from './find-executable';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Where the namespace fd goes in the child's stdio (fds 3 and 4 are taken by CRIU's --status-fd / --ps-socket). */
export const NETNS_STDIO_FD = 9;

/**
 * argv for `file args` inside the namespace whose fd is at `stdio[fdIndex]` of the spawned child. nsenter keeps that
 * fd open, so a shell in between closes it before exec'ing `file`: nothing the command starts (a dumped process)
 * inherits a handle on the namespace. `file` and `args` are passed as arguments, never parsed by the shell.
 */
export function commandInNetns(file: string, args: readonly string[], fdIndex = NETNS_STDIO_FD, nsenterPath?: string): { file: string; args: string[] } {
  if (!Number.isInteger(fdIndex) || fdIndex < 3 || fdIndex > 9) throw new RangeError('commandInNetns: fdIndex must be 3..9');
  const nsenter = nsenterPath ?? findExecutable('nsenter', SYSTEM_PATH) ?? 'nsenter';
  return { file: nsenter, args: [`--net=/proc/self/fd/${fdIndex}`, '--', '/bin/sh', '-c', `exec ${fdIndex}<&- "$0" "$@"`, file, ...args] };
}

/** A stdio array with `fd` placed at NETNS_STDIO_FD (positions in between left 'ignore' unless given). */
export function stdioWithNetns(fd: number, base: readonly ('ignore' | 'pipe' | 'inherit' | number)[] = ['ignore', 'ignore', 'ignore']): ('ignore' | 'pipe' | 'inherit' | number)[] {
  const out = [...base];
  while (out.length < NETNS_STDIO_FD) out.push('ignore');
  out[NETNS_STDIO_FD] = fd;
  return out;
}
