/**
 * One `criu swrk` child and the SEQPACKET socket it talks on.
 *
 * Contract: the session owns the child and both socket ends. `close()` (or an abort) kills the child with SIGKILL if it
 * is still running; killing CRIU while it holds a tree with ptrace detaches it, so a killed session never leaves tasks
 * stopped by ptrace (tasks in a frozen cgroup stay frozen: the freezer's owner thaws them). Killed inside a task
 * (an injected syscall, the parasite), CRIU can kill that task: a dump's session gets no abort (criu-client.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { FerryError } from '../model/ferry-error';
import type { MessageSocket, MessageSocketPairFactory, OwnedFd } from './message-socket';
import { decodeResponse, encodeRequest, type WireRequest, type WireResponse } from './rpc-codec';

export interface SwrkSessionOptions {
  criuPath: string;
  socketPair: MessageSocketPairFactory;
  /** Extra descriptors the child inherits after the socket (fd 4, 5, ...), e.g. an inherited page-server socket. */
  inheritFds?: readonly number[];
  /**
   * Descriptor the child gets as its stdin (default /dev/null). A shell-job restore inherits the job's terminal from
   * CRIU's stdin, so this is the terminal to resume the job on. The caller keeps ownership (the child has a copy).
   */
  stdin?: number;
  signal?: AbortSignal;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const OUTPUT_TAIL_BYTES = 8 * 1024;

export class SwrkSession {
  private readonly child: ChildProcess;
  private readonly socket: MessageSocket;
  private output = '';
  private closed = false;
  readonly exited: Promise<ChildExit>;

  private constructor(child: ChildProcess, socket: MessageSocket) {
    this.child = child;
    this.socket = socket;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(options: SwrkSessionOptions): Promise<SwrkSession> {
    const [mine, theirs] = options.socketPair();
    const inherit = options.inheritFds ?? [];
    let child: ChildProcess;
    try {
      child = spawn(options.criuPath, ['swrk', '3'], {
        stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe', theirs.fd, ...inherit],
      });
    } catch (err) {
      mine.close();
      theirs.close();
      throw spawnError(options.criuPath, err);
    }
    // The child has its own copy now; keeping ours open would hide the child's exit from recv().
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    try {
      await spawned;
    } catch (err) {
      mine.close();
      throw spawnError(options.criuPath, err);
    } finally {
      theirs.close();
    }
    const session = new SwrkSession(child, mine);
    if (options.signal) {
      const onAbort = () => session.close();
      options.signal.addEventListener('abort', onAbort, { once: true });
      void session.exited.then(() => options.signal?.removeEventListener('abort', onAbort));
    }
    return session;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last few KiB CRIU printed on stdout/stderr (normally nothing: it logs to its log file). */
  get outputTail(): string {
    return this.output;
  }

  async send(request: WireRequest): Promise<void> {
    await this.socket.send(encodeRequest(request));
  }

  /** Next response; throws ERR_CRIU_PROTOCOL when CRIU exits without answering. Descriptors sent with it are closed. */
  async recv(): Promise<WireResponse> {
    const { response, fds } = await this.recvWithFds();
    for (const fd of fds) fd.close();
    return response;
  }

  /**
   * Next response with the descriptors CRIU attached to it (SCM_RIGHTS). CRIU attaches one only to the
   * `orphan-pts-master` notify (the master of a pty it created for a restored tree, with orphan_pts_master set).
   * The caller owns the returned descriptors and must close them; if decoding fails they are closed here.
   */
  async recvWithFds(): Promise<{ response: WireResponse; fds: OwnedFd[] }> {
    const message = await this.socket.recv();
    if (message === null) {
      const exit = await Promise.race([this.exited, delay(2000).then(() => null)]);
      const how = exit ? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`) : 'still running';
      throw new FerryError('ERR_CRIU_PROTOCOL', `criu swrk closed the connection without an answer (${how})`, {
        hint: 'See the CRIU log named below, or run `ferry doctor` to check the CRIU installation.',
        details: { output: this.output.trim() || undefined },
      });
    }
    try {
      return { response: decodeResponse(message.data), fds: message.fds };
    } catch (err) {
      for (const fd of message.fds) fd.close();
      throw err;
    }
  }

  async call(request: WireRequest): Promise<WireResponse> {
    await this.send(request);
    return this.recv();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function spawnError(criuPath: string, err: unknown): FerryError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new FerryError('ERR_PRECHECK_CRIU_MISSING', `criu not found (${criuPath})`, {
      hint: 'Install CRIU >= 4.2 with `scripts/provision-host.sh`, or pass --criu PATH.',
      cause: err,
    });
  }
  return new FerryError('ERR_CRIU_SPAWN_FAILED', `cannot start ${criuPath} swrk: ${(err as Error).message}`, {
    hint: 'Check that criu is executable and that ferry runs as root.',
    cause: err,
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

