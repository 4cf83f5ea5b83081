import { binding } from './load-binding';
import { NativeError } from './native-error';
import {
  NETLINK_NETFILTER,
  NfqnlCopy,
  NfqaCfgFlag,
  decodeMessages,
  encodeBind,
  encodeFailOpen,
  encodeParams,
  encodeVerdict,
  encodeVerdictBatch,
  type NfVerdictValue,
  type QueuedPacket,
} from './nfqueue-wire';
import { messageSocketFromFd, type SeqpacketSocket } from './seqpacket';
import { checkOptions } from './validate';

const ENOBUFS = 105;
const EBADF = 9;
const DEFAULT_MAX_LEN = 8192;
const DEFAULT_RECEIVE_BUFFER_BYTES = 8 << 20;
/** Enough for IPv6 + TCP headers with options: what a caller needs to say what it holds. */
const DEFAULT_COPY_RANGE = 128;

export interface NfQueueOptions {
  /** The network namespace whose queue to bind (its nsfs path, e.g. /run/netns/NAME); default: this process's own. */
  netnsPath?: string;
  /** The queue number the iptables rule names (`-j NFQUEUE --queue-num N`), 0..65535. */
  queueNum: number;
  /** Most packets the kernel holds for this queue; beyond it, new packets are dropped (default 8192). */
  maxLen?: number;
  /** Bytes of each packet copied into its notification (default 128; 0 = metadata only). */
  copyRange?: number;
  /** SO_RCVBUF of the netlink socket (default 8 MiB). A full buffer makes the kernel drop the packet it queues. */
  receiveBufferBytes?: number;
  /** Called for every packet the kernel queues, in arrival order. A throw is reported to onError. */
  onPacket: (packet: QueuedPacket) => void;
  /** The socket failed for good (the queue is unusable; packets still queued stay held until close() drops them). */
  onError?: (error: Error) => void;
}

interface Pending {
  resolve: () => void;
  reject: (error: Error) => void;
  what: string;
}

/**
 * A bound NFQUEUE queue (nfnetlink_queue): packets that hit `-j NFQUEUE --queue-num N` in the namespace are held by
 * the kernel and announced through onPacket until a verdict for their id arrives. The queue never decides anything
 * itself: it accepts or drops only when told (no fail-open flag, no bypass).
 *
 * Ownership: the queue owns its netlink socket. close() (or the death of the process) makes the kernel drop every
 * packet still held, and with no listener bound, packets that hit the rule afterwards are dropped too.
 */
export class NfQueue implements Disposable {
  readonly queueNum: number;
  readonly #socket: SeqpacketSocket;
  readonly #onPacket: (packet: QueuedPacket) => void;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #closed = false;
  #lostNotifications = 0;

  private constructor(socket: SeqpacketSocket, options: NfQueueOptions) {
    this.#socket = socket;
    this.queueNum = options.queueNum;
    this.#onPacket = options.onPacket;
    this.#onError = options.onError;
  }

  /**
   * Binds queue `queueNum` of the namespace to a new socket and sets its parameters. Rejects with NativeError (EBUSY:
   * another process has that queue; EPERM: no CAP_NET_ADMIN in the namespace's owner) and leaves nothing open.
   */
  static async open(options: NfQueueOptions): Promise<NfQueue> {
    const o = checkOptions<NfQueueOptions>('NfQueue.open', options, [
      'netnsPath',
      'queueNum',
      'maxLen',
      'copyRange',
      'receiveBufferBytes',
      'onPacket',
      'onError',
    ]);
    if (!Number.isInteger(o.queueNum) || o.queueNum < 0 || o.queueNum > 0xffff) {
      throw new RangeError(`NfQueue.open: queueNum must be in 0..65535, got ${String(o.queueNum)}`);
    }
    if (typeof o.onPacket !== 'function') throw new TypeError('NfQueue.open: onPacket must be a function');
    if (o.netnsPath !== undefined && (typeof o.netnsPath !== 'string' || !o.netnsPath.startsWith('/'))) {
      throw new TypeError('NfQueue.open: netnsPath must be an absolute path');
    }
    const fd = await binding().netlinkSocketInNetns(o.netnsPath ?? '', NETLINK_NETFILTER, o.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES);
    const queue = new NfQueue(messageSocketFromFd(fd), o);
    queue.#readLoop();
    try {
      await queue.#request('bind', (seq) => encodeBind(o.queueNum, seq));
      const copyRange = o.copyRange ?? DEFAULT_COPY_RANGE;
      await queue.#request('set params', (seq) =>
        encodeParams(o.queueNum, seq, {
          copyMode: copyRange > 0 ? NfqnlCopy.PACKET : NfqnlCopy.META,
          copyRange,
          maxLen: o.maxLen ?? DEFAULT_MAX_LEN,
          flags: NfqaCfgFlag.GSO,
        }),
      );
    } catch (error) {
      queue.close();
      throw error;
    }
    return queue;
  }

  /** Notifications the kernel could not deliver (socket buffer full): their packets were dropped, not held. */
  get lostNotifications(): number {
    return this.#lostNotifications;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The verdict for packet `id`; resolves once the kernel has applied it. */
  verdict(id: number, verdict: NfVerdictValue): Promise<void> {
    return this.#request(`verdict ${verdict} for packet ${id}`, (seq) => encodeVerdict(this.queueNum, seq, id, verdict));
  }

  /**
   * The verdict for every held packet with an id up to maxId, applied in arrival order. Resolves once the kernel
   * has applied it, or with `ack: false` once it is sent (no round trip: for a stream of verdicts; a failure is then
   * not reported). Verdicts are applied in the order they were called.
   */
  verdictBatch(maxId: number, verdict: NfVerdictValue, { ack = true }: { ack?: boolean } = {}): Promise<void> {
    const what = `verdict ${verdict} up to packet ${maxId}`;
    if (!ack) {
      if (this.#closed) return Promise.reject(NativeError.fromErrno('nfqueue', `queue ${this.queueNum}, ${what}, closed`, EBADF));
      return this.#socket.send(encodeVerdictBatch(this.queueNum, ++this.#seq, maxId, verdict, false));
    }
    return this.#request(what, (seq) => encodeVerdictBatch(this.queueNum, seq, maxId, verdict));
  }

  /**
   * From now on the kernel accepts every new packet that hits the rule itself, without queueing it (fail-open with
   * room for none); packets already queued still wait for their verdicts. For after the decision to let traffic
   * through: no packet has to make a round trip through this process any more. Resolves once applied.
   */
  passThrough(): Promise<void> {
    return this.#request('pass through', (seq) => encodeFailOpen(this.queueNum, seq));
  }

  /** Idempotent. The kernel drops every packet still held for this queue. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    this.#failPending(NativeError.fromErrno('nfqueue', `queue ${this.queueNum}, closed`, EBADF));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #request(what: string, build: (seq: number) => Buffer): Promise<void> {
    if (this.#closed) return Promise.reject(NativeError.fromErrno('nfqueue', `queue ${this.queueNum}, ${what}, closed`, EBADF));
    const seq = ++this.#seq;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject, what });
      this.#socket.send(build(seq)).catch((error: Error) => {
        this.#pending.delete(seq);
        reject(error);
      });
    });
  }

  async #readLoop(): Promise<void> {
    while (!this.#closed) {
      let message;
      try {
        message = await this.#socket.recv();
      } catch (error) {
        if (this.#closed) return;
        if ((error as NativeError).code === 'ENOBUFS' || (error as NativeError).errno === ENOBUFS) {
          this.#lostNotifications++;
          continue;
        }
        this.#failPending(error as Error);
        this.#onError?.(error as Error);
        return;
      }
      if (message === null) return;
      for (const m of decodeMessages(message.data)) {
        if (m.kind === 'packet') {
          try {
            this.#onPacket(m.packet);
          } catch (error) {
            this.#onError?.(error as Error);
          }
        } else if (m.kind === 'ack') {
          const pending = this.#pending.get(m.seq);
          if (!pending) continue;
          this.#pending.delete(m.seq);
          if (m.errno === 0) pending.resolve();
          else pending.reject(NativeError.fromErrno('nfqueue', `queue ${this.queueNum}, ${pending.what}`, m.errno));
        }
      }
    }
  }

  #failPending(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }
}

export { NfVerdict, NfInetHook, type QueuedPacket, type NfVerdictValue } from './nfqueue-wire';
