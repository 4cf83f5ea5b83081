/**
 * What one move knows while it runs, shared by the skeleton (execute-migration.ts) and its strategy: the container,
 * the connection, the plan, the journal, the undo steps, and the running totals of the report.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, createImageDir, type ContainerInfo, type EventSink, type KnownContainer, type MigrationEvent, type NetworkSpec, type Phase, type RuntimeAdapter } from '@ferry/core';
import type { AgentConnection } from '../protocol/agent-connection';
import type { AgentPeer } from '../protocol/agent-peer';
import type { UploadResult } from '../protocol/agent-messages';
import type { Journal } from '../journal/journal';
import { packDir, transferProgress } from '../transfer';
import { faultPoint } from './fault-points';
import type { MigrateDeps, MigrateRequest } from './migrate-deps';
import type { MigrationPlan } from './plan-migration';
import { Reverter } from './reverter';

export class MoveContext {
  readonly started = Date.now();
  readonly phasesMs: Partial<Record<Phase, number>> = {};
  readonly warnings: string[] = [];
  readonly revert = new Reverter();
  bytesSent = 0;
  bytesSentFrozen = 0;
  /** When the source stopped running for good (or, for a clone, was frozen). */
  frozenAt?: number;
  /** The destination made the copy's network namespace before the freeze and holds its traffic (prepare-network.ts). */
  networkHeldAhead = false;
  /** Settles once the destination answered whether it raised that namespace's links at the fence (never rejects). */
  networkRaised?: Promise<void>;
  /** The container's network as read before the freeze (prepare-network.ts); the dump's record takes it. */
  network?: NetworkSpec;
  /** Set once the destination journaled `committed`: abort requests are ignored from then on. */
  pastPointOfNoReturn = false;
  /** The phase running now (progress events name it). */
  private currentPhase?: Phase;
  private conn?: AgentConnection;
  private planned?: MigrationPlan;
  private readonly emitter: EventSink;
  /** This move's files on this host: STATE/migrations/ID/{images,work,pre,cpuinfo}. */
  readonly imagesDir: string;
  readonly workDir: string;

  constructor(
    readonly id: string,
    readonly request: MigrateRequest,
    readonly deps: MigrateDeps,
    readonly adapter: RuntimeAdapter,
    readonly container: ContainerInfo,
    readonly journal: Journal,
  ) {
    this.emitter = request.onEvent ?? (() => undefined);
    this.imagesDir = join(journal.dir, 'images');
    this.workDir = join(journal.dir, 'work');
  }

  get name(): string {
    return this.container.ref.id;
  }

  /** What this move read of the container before the freeze, for the runtime to take while clients wait. */
  get known(): KnownContainer {
    return { container: this.container, ...(this.network ? { network: this.network } : {}) };
  }

  get connection(): AgentConnection {
    if (!this.conn) throw new Error('not connected yet');
    return this.conn;
  }

  set connection(conn: AgentConnection) {
    this.conn = conn;
  }

  get peer(): AgentPeer {
    return this.connection.peer;
  }

  get plan(): MigrationPlan {
    if (!this.planned) throw new Error('not planned yet');
    return this.planned;
  }

  set plan(plan: MigrationPlan) {
    this.planned = plan;
  }

  get criuFlags(): { tcpEstablished: boolean; fileLocks: boolean; extUnixSk: boolean } {
    return { tcpEstablished: this.request.tcpEstablished, fileLocks: this.request.fileLocks, extUnixSk: this.request.extUnixSk };
  }

  emit(event: MigrationEvent): void {
    this.emitter(event);
  }

  #cleaning?: Promise<void>;

  /**
   * Removes everything of this move on the destination, once however often it is asked (a rollback may need it
   * before the source's network comes back, and always does at its end). The agent undoes everything itself when its
   * connection drops; when it is gone, a new one is asked to.
   */
  cleanDestination(): Promise<void> {
    this.#cleaning ??= (async () => {
      if (!this.peer.closed) await this.peer.request('abort', { migrationId: this.id }).catch(() => undefined);
      if (this.peer.closed) await this.deps.cleanupRemote(this.request.destination, this.id);
      this.connection.finishTunnels('reset');
    })();
    return this.#cleaning;
  }

  /** Throws ERR_ABORTED when the move was asked to stop and can still be undone. */
  checkAbort(): void {
    if (this.request.signal?.aborted && !this.pastPointOfNoReturn) {
      throw new FerryError('ERR_ABORTED', 'migration interrupted', { hint: 'The source container keeps running.' });
    }
  }

  /** Runs one phase: journaled before it acts, timed, reported; `measure` picks sizes from its result. */
  async phase<T>(name: Phase, body: () => Promise<T>, measure?: (r: T) => { bytes?: number; files?: number }): Promise<T> {
    this.checkAbort();
    this.journal.append({ t: 'phase', phase: name });
    await faultPoint(this.request.faults, name);
    this.emit({ type: 'phase-start', phase: name });
    this.currentPhase = name;
    const t0 = Date.now();
    const result = await body();
    const ms = Date.now() - t0;
    this.phasesMs[name] = (this.phasesMs[name] ?? 0) + ms;
    this.emit({ type: 'phase-end', phase: name, ms, ...(measure ? measure(result) : {}) });
    return result;
  }

  sent(bytes: number, frozen = false): void {
    this.bytesSent += bytes;
    if (frozen) this.bytesSentFrozen += bytes;
  }

  /**
   * Sends a directory to the destination as `part` of this move, with progress events of the running phase
   * (`totalBytes`: what it will send, when known).
   */
  upload(part: string, dir: string, options: Parameters<typeof packDir>[2] = {}, totalBytes?: number): Promise<UploadResult> {
    const progress = this.currentPhase ? transferProgress(this.currentPhase, (e) => this.emit(e), totalBytes) : undefined;
    return this.peer.request<UploadResult>('upload', { migrationId: this.id, part }, (sink) =>
      packDir(dir, sink, { ...options, ...(progress ? { onProgress: progress.onProgress } : {}) }).then(() => progress?.flush()),
    );
  }

  /** The dump's directories, made on first use (0700). */
  dumpDirs(): { imagesDir: string; workDir: string } {
    createImageDir(this.imagesDir);
    mkdirSync(this.workDir, { recursive: true, mode: 0o700 });
    return { imagesDir: this.imagesDir, workDir: this.workDir };
  }
}
