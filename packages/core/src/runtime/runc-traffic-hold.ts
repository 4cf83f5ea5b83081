/**
 * restore({ holdNetwork }) for runc with a packet hold (docs/network-switchover.md): instead of keeping the bridge
 * ends of a re-created namespace down until releaseNetwork(), its traffic is held (NFQUEUE) and the bridge ends come
 * up before the restore. What the client sends during the restore and the commit is queued, not lost: at the release
 * the restored sockets get it at once and the client does not wait for its retransmission timer. Nothing the copy
 * sends leaves before the release either (crash-safety §3).
 *
 * Crash safety: the hold's record is in owned.json before a rule exists. If the holding process dies, the kernel drops
 * what was queued and drops new packets (no bypass): the copy stays cut off, never half-released. releaseNetwork()
 * from any process then lifts the rules (after `committed`); remove() deletes the namespace, and the rules with it.
 */
import { holdNetnsTraffic, liftPacketHold, type PacketHold, type PacketHoldRecord } from '../network';
import type { Reverter } from './adapter-common';
import type { OwnedResources, OwnedStore } from './runc-restore';
import type { NetworkRelease } from './runtime-adapter';

export type StartHold = (netnsPath: string, onRecord: (record: PacketHoldRecord) => void) => Promise<PacketHold>;

/** The holds this process has running, by container name; owned.json has their records for any other process. */
export class RuncTrafficHolds {
  readonly #live = new Map<string, PacketHold>();
  /** Why a hold could not be set up, for the release's report (the bridge ends stayed down instead). */
  readonly #notHeld = new Map<string, string>();

  constructor(
    private readonly store: OwnedStore,
    private readonly searchPath: string,
    private readonly start: StartHold = (netnsPath, onRecord) => holdNetnsTraffic({ netnsPath, searchPath, onRecord }),
  ) {}

  /**
   * Holds the namespace's traffic, then raises its bridge ends (`raise`). Returns false, having changed nothing, when
   * the hold cannot be set up (no iptables, no NFQUEUE): the caller keeps the bridge ends down until the release
   * instead. The abort is registered with `revert` before the hold exists.
   */
  async holdThenRaise(name: string, netnsPath: string, owned: OwnedResources, raise: () => Promise<void>, revert: Reverter): Promise<boolean> {
    revert.add(() => this.abort(name));
    if (!(await this.hold(name, netnsPath, owned))) return false;
    await this.raiseHeld(name, owned, raise);
    return true;
  }

  /**
   * Holds the namespace's traffic, its bridge ends still down (a namespace made before the freeze: the source still
   * answers for the same addresses). False, having changed nothing, when the hold cannot be set up.
   */
  async hold(name: string, netnsPath: string, owned: OwnedResources): Promise<boolean> {
    let hold: PacketHold;
    try {
      hold = await this.start(netnsPath, (record) => {
        owned.heldTraffic = record;
        this.store.write(name, owned);
      });
    } catch (err) {
      delete owned.heldTraffic;
      this.store.write(name, owned);
      this.#notHeld.set(name, (err as Error).message);
      return false;
    }
    this.#live.set(name, hold);
    return true;
  }

  /** Whether this process holds the traffic of `name`'s namespace. */
  holding(name: string): boolean {
    return this.#live.has(name);
  }

  /** Raises the bridge ends of a held namespace: what arrives from now on waits in the hold. */
  async raiseHeld(name: string, owned: OwnedResources, raise: () => Promise<void>): Promise<void> {
    if (!this.#live.has(name)) throw new Error(`no packet hold for ${name}: its bridge ends stay down`);
    await raise();
    delete owned.heldUplink;
    this.store.write(name, owned);
  }

  /**
   * Delivers what this process held (in arrival order) and lets traffic flow; for a hold another process started
   * (it died), removes its rules: what it had queued was dropped and is retransmitted. Idempotent.
   */
  async release(name: string, owned: OwnedResources | undefined): Promise<NetworkRelease | undefined> {
    const hold = this.#live.get(name);
    let out: NetworkRelease | undefined;
    if (hold) {
      const r = await hold.release();
      out = { heldInbound: r.held.inbound, heldOutbound: r.held.outbound, verdictMs: r.verdictMs };
      this.#live.delete(name);
    } else if (owned?.heldTraffic) {
      out = { heldInbound: 0, heldOutbound: 0, lifted: await liftPacketHold(owned.heldTraffic, this.searchPath) };
    } else if (this.#notHeld.has(name)) {
      out = { heldInbound: 0, heldOutbound: 0, notHeld: this.#notHeld.get(name)! };
    }
    this.#notHeld.delete(name);
    if (owned?.heldTraffic) {
      delete owned.heldTraffic;
      this.store.write(name, owned);
    }
    return out;
  }

  /** Drops what this process held (the copy is going away); the namespace's deletion removes the rules. */
  async abort(name: string): Promise<void> {
    const hold = this.#live.get(name);
    this.#live.delete(name);
    this.#notHeld.delete(name);
    await hold?.abort();
  }
}
