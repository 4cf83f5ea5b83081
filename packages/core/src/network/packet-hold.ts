/**
 * The packet hold of a switch-over: every IP packet into or out of a container's network namespace is kept by the
 * kernel (NFQUEUE) until the move is decided, then delivered in arrival order (release) or dropped (abort).
 *
 * Why: the destination copy must not reach the network before the destination has journaled `committed`, yet
 * whatever a client sends meanwhile must not be lost (it would wait for its own retransmission timer, whose
 * back-off doubles) nor reach the namespace before the restored sockets exist (the kernel would answer with a
 * reset). What the restored sockets send first (the window probe of TCP_REPAIR off, replies to requests restored in
 * their receive queues) is held as well, before the neighbour layer: it leaves once the link is up, not into a
 * link that is still down, where it would strand the neighbour entry for a second (see docs/network-switchover.md).
 *
 * Contract:
 * - No packet is accepted before release(): the only ACCEPT verdicts are sent from the releasing state.
 * - release(): accepts what is held, in order, and has the kernel accept what comes after without asking ferry
 *   (NfQueue.passThrough); then removes the rules at leisure.
 *   Asked twice, the second call gets the first one's result. If removing the rules fails it throws and the hold
 *   keeps passing packets on while this process lives; call release() again (or liftPacketHold from elsewhere).
 * - abort(): drops what is held and what arrives, removes the rules. Call it once the held copy is gone (or its
 *   namespace deleted): from then on nothing stops traffic into the namespace. After release() it is a no-op.
 * - The death of this process: the kernel drops what was held, and with nobody bound to the queue keeps dropping
 *   what hits the rules (no --queue-bypass), so the namespace stays cut off until liftPacketHold() (or
 *   PacketHold.adopt() to hold again) runs with the record from the journal.
 */
import { NfQueue, NfVerdict, NfInetHook, type NfVerdictValue, type QueuedPacket } from '@ferry/native';
import { FerryError } from '../model/ferry-error';
import { formatPacketSummary, summarizePacket } from './describe-packet';
import type { PacketHoldRecord } from './hold-plan';
import { installHoldRules, removeHoldRules, runTool, type NetfilterTools, type ToolRunner } from './hold-rules';

/** The kernel queue as the hold uses it: NfQueue, or a fake in unit tests. */
export interface HoldQueue {
  /** ack false: resolves once sent, without waiting for the kernel's answer (verdicts still apply in call order). */
  verdictBatch(maxId: number, verdict: NfVerdictValue, options?: { ack?: boolean }): Promise<void>;
  /** The kernel accepts new packets itself from now on (NfQueue.passThrough). */
  passThrough(): Promise<void>;
  close(): void;
  readonly lostNotifications: number;
}

export type OpenHoldQueue = (options: {
  netnsPath: string;
  queueNum: number;
  onPacket: (packet: QueuedPacket) => void;
  onError: (error: Error) => void;
}) => Promise<HoldQueue>;

const openNfQueue: OpenHoldQueue = (o) => NfQueue.open(o);

export interface PacketHoldOptions {
  /** From planPacketHold(); journal it before start(), so that a crash in between leaves nothing unknown. */
  record: PacketHoldRecord;
  tools: NetfilterTools;
  run?: ToolRunner;
  openQueue?: OpenHoldQueue;
}

export type PacketHoldState = 'holding' | 'releasing' | 'released' | 'aborting' | 'aborted';

export interface PacketHoldResult {
  outcome: 'released' | 'aborted';
  /** Packets held until the decision: inbound (INPUT), outbound (OUTPUT), forwarded. */
  held: { inbound: number; outbound: number; forwarded: number; bytes: number };
  /** Packets that arrived while the rules were being removed, passed on (release) or dropped (abort). */
  late: number;
  /** Notifications lost to a full socket buffer: those packets were dropped by the kernel, not held. */
  lostNotifications: number;
  /**
   * From the hold's start to the decision; from the decision until the kernel had applied the verdict on what was
   * held (what the held traffic waited for); and until the rules were gone and the queue closed.
   */
  heldMs: number;
  verdictMs: number;
  decisionMs: number;
  /** The namespace was gone when the rules were to be removed. */
  netnsGone: boolean;
  /** The queue's socket failed before the decision: what it held was dropped by the kernel, not delivered. */
  queueError?: string;
  /** Release: the kernel let new packets through itself from the verdict on (false: they came through ferry). */
  passThrough?: boolean;
  /** The first packets held, one line each (for reports and docs). */
  first: string[];
}

const ENOENT = 2;
const FIRST_KEPT = 16;
/** After the rules are gone, packets still inside the old rules on another CPU have this long to reach the queue. */
const RULES_GONE_SETTLE_MS = 5;

export class PacketHold {
  readonly record: PacketHoldRecord;
  readonly #tools: NetfilterTools;
  readonly #run: ToolRunner;
  #queue: HoldQueue | undefined;
  #state: PacketHoldState = 'holding';
  #maxId = 0;
  #held = { inbound: 0, outbound: 0, forwarded: 0, bytes: 0 };
  #late = 0;
  #first: string[] = [];
  #verdicts: Promise<void> = Promise.resolve();
  #queueError: Error | undefined;
  #startedAt = performance.now();
  #decision: Promise<PacketHoldResult> | undefined;
  #passThrough: Promise<boolean> | undefined;
  #result: PacketHoldResult | undefined;

  private constructor(options: PacketHoldOptions) {
    this.record = options.record;
    this.#tools = options.tools;
    this.#run = options.run ?? runTool;
  }

  /**
   * Binds the queue, then installs the rules (from then on traffic is held). On failure everything it did is
   * undone and it throws ERR_NETWORK_HOLD_FAILED; traffic was never let through in between.
   */
  static async start(options: PacketHoldOptions): Promise<PacketHold> {
    const hold = new PacketHold(options);
    await hold.#bind(options.openQueue ?? openNfQueue);
    try {
      await installHoldRules(hold.record, hold.#tools, hold.#run);
    } catch (err) {
      // Queue first: with the rules half there and nobody bound, traffic is dropped, never let through.
      hold.#queue?.close();
      await removeHoldRules(hold.record, hold.#tools, hold.#run).catch(() => undefined);
      throw err;
    }
    return hold;
  }

  /**
   * Takes over the hold of a process that died (the record from its journal): binds the queue again and makes
   * sure the rules are all there. What the dead process held was dropped by the kernel; what comes now is held.
   */
  static async adopt(options: PacketHoldOptions): Promise<PacketHold> {
    return PacketHold.start(options);
  }

  get state(): PacketHoldState {
    return this.#state;
  }

  /** Packets held so far (inbound + outbound + forwarded). */
  get heldCount(): number {
    return this.#held.inbound + this.#held.outbound + this.#held.forwarded;
  }

  release(): Promise<PacketHoldResult> {
    if (this.#state === 'aborting' || this.#state === 'aborted') {
      return Promise.reject(
        new FerryError('ERR_NETWORK_HOLD_ABORTED', `packet hold ${this.record.id} was aborted: its packets were dropped`, {
          hint: 'This is a bug in the caller: a move is either released or aborted.',
        }),
      );
    }
    if (this.#result) return Promise.resolve(this.#result);
    if (this.#decision) return this.#decision;
    this.#decision = this.#decide('releasing', NfVerdict.ACCEPT).finally(() => (this.#decision = undefined));
    return this.#decision;
  }

  abort(): Promise<PacketHoldResult> {
    if (this.#result) return Promise.resolve(this.#result);
    if (this.#decision) return this.#decision;
    // A release that failed half-way has let packets through already: finishing it is all that is left to do.
    if (this.#state === 'releasing') return this.release();
    this.#decision = this.#decide('aborting', NfVerdict.DROP).finally(() => (this.#decision = undefined));
    return this.#decision;
  }

  async #bind(open: OpenHoldQueue): Promise<void> {
    try {
      this.#queue = await open({
        netnsPath: this.record.netnsPath,
        queueNum: this.record.queueNum,
        onPacket: (p) => this.#onPacket(p),
        onError: (e) => (this.#queueError = e),
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new FerryError('ERR_NETWORK_HOLD_FAILED', `cannot bind NFQUEUE ${this.record.queueNum} in ${this.record.netnsPath}: ${(err as Error).message}`, {
        hint:
          code === 'EPERM'
            ? 'Another process holds that queue number in the namespace (a second ferry?), or ferry is not root.'
            : 'The kernel needs CONFIG_NETFILTER_NETLINK_QUEUE; run as root.',
        cause: err,
        details: { holdId: this.record.id, queueNum: this.record.queueNum },
      });
    }
  }

  #onPacket(packet: QueuedPacket): void {
    if (this.#state === 'released' || this.#state === 'aborted') return;
    if (packet.id > this.#maxId || this.#maxId - packet.id > 0x7fffffff) this.#maxId = packet.id;
    if (this.#state !== 'holding') {
      // Arrived while the rules are being removed: same fate as the held ones, in arrival order.
      this.#late++;
      this.#verdict(packet.id, this.#state === 'releasing' ? NfVerdict.ACCEPT : NfVerdict.DROP, false);
      return;
    }
    if (packet.hook === NfInetHook.LOCAL_OUT) this.#held.outbound++;
    else if (packet.hook === NfInetHook.FORWARD) this.#held.forwarded++;
    else this.#held.inbound++;
    this.#held.bytes += packet.capturedFrom ?? packet.payload?.length ?? 0;
    if (this.#first.length < FIRST_KEPT && packet.payload) {
      const s = summarizePacket(packet.payload);
      const direction = packet.hook === NfInetHook.LOCAL_OUT ? 'out' : packet.hook === NfInetHook.FORWARD ? 'fwd' : 'in';
      this.#first.push(`${direction} ${s ? formatPacketSummary(s) : `ethertype 0x${packet.hwProtocol.toString(16)}`}`);
    }
  }

  /**
   * Sends a verdict for every packet up to `maxId`; the socket sends in call order, so verdicts apply in the order
   * given. `ack`: wait for the kernel's answer (ENOENT: nothing was left to decide). Packets passed on while the
   * rules are being removed go without: a round trip each would make them queue up behind one another.
   */
  #verdict(maxId: number, verdict: NfVerdictValue, ack = true): void {
    if (verdict === NfVerdict.ACCEPT && this.#state !== 'releasing') {
      throw new Error(`packet hold ${this.record.id}: ACCEPT outside release (state ${this.#state})`); // the rule of this class
    }
    const queue = this.#queue;
    if (!queue || this.#queueError) return;
    const sent = queue.verdictBatch(maxId, verdict, { ack }).catch((err: { errno?: number }) => {
      if (err?.errno !== ENOENT) this.#queueError ??= err as Error;
    });
    this.#verdicts = Promise.all([this.#verdicts, sent]).then(() => undefined);
  }

  async #decide(state: 'releasing' | 'aborting', verdict: NfVerdictValue): Promise<PacketHoldResult> {
    const decidedAt = performance.now();
    if (this.#state === 'holding') {
      this.#state = state;
      if (this.#maxId > 0) this.#verdict(this.#maxId, verdict);
      // Sent right behind the verdict: from then on new packets go through without a round trip through this
      // process, which on a loaded machine took hundreds of ms each time it was its turn to run.
      if (state === 'releasing' && this.#queue && !this.#queueError) {
        this.#passThrough = this.#queue.passThrough().then(
          () => true,
          () => false,
        );
      }
    }
    await this.#verdicts;
    const verdictMs = Math.round(performance.now() - decidedAt);
    const passThrough = await this.#passThrough;
    // Whatever was queued between the verdict and the pass-through, in order.
    if (passThrough && this.#maxId > 0) this.#verdict(this.#maxId, verdict);
    await this.#verdicts;
    const rules = await removeHoldRules(this.record, this.#tools, this.#run); // throws: state stays, packets pass
    // The answer to a request sent now comes after the announcements of everything queued before it: once it is
    // in, every packet the rules caught has had its verdict queued.
    await new Promise((r) => setTimeout(r, RULES_GONE_SETTLE_MS));
    if (this.#maxId > 0) this.#verdict(this.#maxId, verdict);
    await this.#verdicts;
    this.#queue?.close();
    this.#state = state === 'releasing' ? 'released' : 'aborted';
    this.#result = {
      outcome: state === 'releasing' ? 'released' : 'aborted',
      held: { ...this.#held },
      late: this.#late,
      lostNotifications: this.#queue?.lostNotifications ?? 0,
      heldMs: Math.round(decidedAt - this.#startedAt),
      verdictMs,
      decisionMs: Math.round(performance.now() - decidedAt),
      netnsGone: rules === 'gone',
      first: [...this.#first],
      ...(this.#queueError ? { queueError: this.#queueError.message } : {}),
      ...(passThrough === undefined ? {} : { passThrough }),
    };
    return this.#result;
  }
}
