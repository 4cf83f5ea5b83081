/**
 * How to checkpoint and restore a terminal session: pure decisions from the facts /proc gives about the tree, and
 * the CRIU options they lead to. What CRIU 4.2.1 does with terminals (measured, see docs/sessions.md):
 *
 * - A tree whose session leader and pty masters are all inside it (a tmux or screen server, a daemon) needs
 *   nothing: CRIU dumps and restores the masters, slaves and sessions.
 * - A tree whose session leader is outside (a job started from an interactive shell) is a "shell job": the dump
 *   needs shell_job; on restore CRIU puts the tree into its own session and attaches the job's terminal to CRIU's
 *   stdin, which must be a terminal of that session ("Don't have tty to inherit session from" otherwise). Neither
 *   inherit_fd `tty[rdev:dev]` ("No task found with sid N") nor orphan_pts_master works for such a job.
 * - A tree whose root leads its own session on a pty whose master is outside (a login shell under sshd, a terminal
 *   emulator, `script`) is a "shell session": the dump needs shell_job (else "Found slave peer index N without
 *   correspond master peer"); on restore orphan_pts_master makes CRIU create a new pty with the same index and send
 *   its master back over RPC (the `orphan-pts-master` notify); whoever holds that master is the new terminal.
 * - CRIU restores at most one such external terminal per tree ("Only one slave external peer is allowed").
 */
import type { CriuDumpOptions, CriuRestoreOptions } from '../criu/criu-options';
import { FerryError } from '../model/ferry-error';
import { ptyIndexOfTtyNr, type PtyUse, type TaskIds } from './proc-tree';

export type SessionKind = 'tmux' | 'screen' | 'shell-job' | 'shell-session' | 'process-tree';

/**
 * What the restored tree's external terminal becomes: none; the terminal of whoever restores (CRIU's stdin);
 * or a new pty whose master the restorer receives.
 */
export type TerminalMode = 'none' | 'caller' | 'new-pty';

export interface SessionPlan {
  kind: SessionKind;
  /** CRIU's shell_job: the tree's session or one of its terminals is outside the tree. */
  shellJob: boolean;
  terminal: TerminalMode;
  /** Index of the pty slave whose master is outside the tree (/dev/pts/N), if any. */
  externalPty?: number;
  /** One line for people: why this kind. */
  reason: string;
}

/**
 * Decides how to dump the tree rooted at `rootPid` (`tasks` from readProcessTree, `ptys` from readPtyUse; `server`
 * when the root is a tmux or screen server, which names the kind). Throws ERR_PRECHECK_UNSUPPORTED_CONFIG for a tree
 * CRIU cannot restore (two external terminals).
 */
export function planSessionDump(rootPid: number, tasks: readonly TaskIds[], ptys: PtyUse, server?: 'tmux' | 'screen'): SessionPlan {
  const root = tasks.find((t) => t.pid === rootPid);
  if (!root) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `process ${rootPid} is not part of the tree read from /proc`);
  const inTree = new Set(tasks.map((t) => t.pid));
  const masters = new Set(ptys.masters);
  const external = ptys.slaves.filter((index) => !masters.has(index));
  if (external.length > 1) {
    throw new FerryError(
      'ERR_PRECHECK_UNSUPPORTED_CONFIG',
      `the tree of ${rootPid} holds ${external.length} terminals whose masters are outside it (${external.map((i) => `/dev/pts/${i}`).join(', ')}); CRIU restores at most one`,
      { hint: 'Checkpoint a tree that uses one outside terminal, or run it inside tmux and checkpoint the tmux server.' },
    );
  }
  const externalPty = external[0];
  const withPty = externalPty === undefined ? {} : { externalPty };
  if (!inTree.has(root.sid)) {
    return {
      kind: server ?? 'shell-job',
      shellJob: true,
      terminal: externalPty === undefined ? 'none' : 'caller',
      ...withPty,
      reason: `its session leader ${root.sid} is outside the tree (a job of a shell)`,
    };
  }
  if (externalPty !== undefined) {
    // The session that has this pty as its controlling terminal leads from inside the tree: CRIU can give it a new
    // pty. A slave merely open (not a controlling terminal here) can only be inherited from the restorer.
    const leader = tasks.find((t) => t.pid === t.sid && ptyIndexOfTtyNr(t.ttyNr) === externalPty);
    if (leader) {
      return {
        kind: server ?? 'shell-session',
        shellJob: true,
        terminal: 'new-pty',
        externalPty,
        reason: `session leader ${leader.pid} has /dev/pts/${externalPty} as its terminal, whose master is outside the tree`,
      };
    }
    return {
      kind: server ?? 'process-tree',
      shellJob: true,
      terminal: 'caller',
      externalPty,
      reason: `it has /dev/pts/${externalPty} open, whose master is outside the tree`,
    };
  }
  return {
    kind: server ?? 'process-tree',
    shellJob: false,
    terminal: 'none',
    reason: 'its sessions and terminals are all inside the tree',
  };
}

export interface SessionDumpSettings {
  pid: number;
  imagesDir: string;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
}

/** The CRIU dump options for a plan. */
export function sessionDumpOptions(plan: SessionPlan, settings: SessionDumpSettings): CriuDumpOptions {
  return {
    pid: settings.pid,
    imagesDir: settings.imagesDir,
    leaveRunning: settings.leaveRunning ?? false,
    shellJob: plan.shellJob,
    fileLocks: settings.fileLocks ?? true,
    tcpEstablished: settings.tcpEstablished ?? false,
  };
}

export interface SessionRestoreRequest {
  terminal: TerminalMode;
  shellJob: boolean;
  tcpEstablished: boolean;
  fileLocks: boolean;
}

/**
 * The CRIU restore options and the criu child's stdin for a recorded session. `terminalFd` is the restorer's
 * terminal, needed (and only used) when the session's terminal mode is 'caller'.
 */
export function sessionRestoreOptions(
  session: SessionRestoreRequest,
  imagesDir: string,
  terminalFd?: number,
): { options: CriuRestoreOptions; stdin?: number } {
  const options: CriuRestoreOptions = {
    imagesDir,
    logFile: 'restore.log',
    fileLocks: session.fileLocks,
    tcpEstablished: session.tcpEstablished,
  };
  switch (session.terminal) {
    case 'new-pty':
      return { options: { ...options, orphanPtsMaster: true } };
    case 'caller':
      if (terminalFd === undefined) {
        throw new FerryError('ERR_PRECHECK_BAD_INPUT', 'this job ran on a terminal it did not own: it can only be resumed on the terminal of whoever restores it', {
          hint: 'Run the restore from an interactive terminal (stdin a tty); the job then runs in the background of that terminal.',
        });
      }
      return { options: { ...options, shellJob: true }, stdin: terminalFd };
    case 'none':
      return { options: session.shellJob ? { ...options, shellJob: true } : options };
  }
}
