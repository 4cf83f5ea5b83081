/**
 * The one checkpoint pipeline every runtime adapter runs (P.Haul's iters.py driving a hauler; go-criu's phaul):
 * check the request, find and preflight the container, make the image and work directories, draw up the record with
 * the common CRIU block, run the runtime's dump tool under its deadline and the caller's abort, recover the container
 * when the tool failed, report the failure one way (tool-failure.ts), write the record, measure, and say what state
 * the container is in. A runtime contributes only DumpHooks: how to find its container, what its record adds, how
 * its tool dumps, how it recovers, and (Docker, Podman) how its own pause holds the container through the dump.
 *
 * Contract (RuntimeAdapter.checkpoint): when this throws, the container is in the state it was in before the call;
 * the record is written only when the dump succeeded (before it for a lazy dump, whose images are complete while
 * CRIU still serves pages), so an images directory with a record is a complete one.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createImageDir } from '../image/image-dir';
import type { ContainerInfo, ContainerRef, RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { checkpointStats, checkedNetnsPath, stoppedAfterDump, throwIfAborted } from './adapter-common';
import { RECORD_FORMAT, writeCheckpointRecord, type CheckpointRecord, type RecordExtras } from './checkpoint-record';
import type { ToolOutcome } from './run-tool';
import type { CheckpointOptions, CheckpointResult } from './runtime-adapter';
import { criuFailure } from './tool-failure';

/** Who runs a pipeline: what both hook sets (DumpHooks, RestoreHooks) share. */
export interface PipelineRuntime<R extends RuntimeName> {
  readonly runtime: R;
  /** How messages name the runtime ("runc", "LXC", "docker"). */
  readonly label: string;
  /** Hint of an ERR_RUNTIME_FAILED (the tool failed before CRIU ran). */
  readonly toolHint: string;
  /** The tools' deadlines (the adapter's options). */
  readonly timeouts: { readonly checkpointTimeoutMs: number; readonly restoreTimeoutMs: number };
}

/** One dump, as the pipeline settled it. */
export interface DumpPlan {
  readonly options: CheckpointOptions;
  /** Absolute, 0700, created. */
  readonly imagesDir: string;
  readonly workDir: string;
  /** The tasks keep running after the dump (leaveRunning, or a pre-dump). */
  readonly leaveRunning: boolean;
  /** Checked to be a network namespace: the dump tool runs inside it. */
  readonly netnsPath: string | undefined;
}

/** The container as found before the dump, and whatever the runtime's hooks need of it. */
export interface Found<T> {
  /** What inspect() says; read once, since the container may be frozen already (the migration's hold). */
  before: ContainerInfo;
  target: T;
}

/**
 * What a runtime plugs into the pipeline. Each hook states what it may assume and leave behind; most are a few lines.
 */
export interface DumpHooks<R extends RuntimeName, T> extends PipelineRuntime<R> {
  /** Bad input (ERR_PRECHECK_*) before anything is read: the name, options the runtime cannot honour. */
  check(ref: ContainerRef, options: CheckpointOptions): void;
  /**
   * Reads the container; changes nothing. ERR_RUNTIME_NOT_FOUND when it does not exist. May take `known` (the
   * caller's read, CheckpointOptions.known) instead.
   */
  find(ref: ContainerRef, known?: CheckpointOptions['known']): Promise<Found<T>>;
  /**
   * RuntimeAdapter.preflight (refuses what CRIU cannot dump, before anything is frozen) and the checks of this dump
   * that need the container (Docker: can the daemon restore what the dump ends).
   */
  preflight(found: Found<T>, options: CheckpointOptions): Promise<void>;
  /** The runtime's part of the record, read before the dump (after it the container may be gone). */
  recordExtras(found: Found<T>, plan: DumpPlan): RecordExtras[R] | Promise<RecordExtras[R]>;
  /**
   * Runs the dump tool; resolves with its outcome (failures included) and rejects only when it could not run, after
   * undoing its own side effects. May complete `record` (written after it returns). A lazy dump calls
   * options.lazyPages.onReady once the images are complete and the page server listens.
   */
  dump(found: Found<T>, plan: DumpPlan, record: CheckpointRecord<R>): Promise<ToolOutcome>;
  /** Where CRIU's log of this dump lands. */
  dumpLog(plan: DumpPlan): string;
  /**
   * After a failed dump: bring the container back to its state before the call (CRIU may have left it frozen when it
   * was killed at the deadline or by an abort). Runs before the hold is thawed.
   */
  recover?(found: Found<T>, outcome: ToolOutcome): Promise<void>;
  /**
   * The runtime's own pause, held from before dump() until the dump is over (Docker, Podman: the writable layer that
   * dump() saves must be the one CRIU's images refer to). Only a container that was running is paused, and only it is
   * thawed again: when dump() throws or fails, and after a successful dump that left the tasks running. A pause that
   * throws fails the checkpoint as it is (nothing was paused); a thaw that throws is passed over (the error the caller
   * needs is the dump's, and a successful dump has its images).
   */
  hold?: { pause(found: Found<T>): Promise<void>; thaw(found: Found<T>): Promise<void> };
  /** After a successful dump, before the hold is thawed (Docker, Podman: remove the container CRIU ended). */
  afterDump?(found: Found<T>, plan: DumpPlan): Promise<void>;
  /** Whether the tool's messages show that CRIU ran even without a log (liblxc names CRIU). */
  criuNamed?(outcome: ToolOutcome): boolean;
  inspect(id: string): Promise<ContainerInfo>;
}

/** RuntimeAdapter.checkpoint through `hooks`. */
export async function checkpointContainer<R extends RuntimeName, T>(hooks: DumpHooks<R, T>, ref: ContainerRef, options: CheckpointOptions): Promise<CheckpointResult> {
  hooks.check(ref, options);
  if (options.onNotify) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `the ${hooks.label} adapter cannot pass CRIU notifications (the runtime keeps them)`, {
      hint: 'Hold the container with pause() and checkpoint it with leaveRunning instead.',
    });
  }
  const netnsPath = options.netnsPath === undefined ? undefined : checkedNetnsPath(options.netnsPath);
  throwIfAborted(options.signal, `checkpoint of ${ref.id}`);
  const found = await hooks.find(ref, options.known);
  const { before } = found;
  await hooks.preflight(found, options);

  const imagesDir = createImageDir(resolve(options.imagesDir));
  const workDir = resolve(options.workDir ?? imagesDir);
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const plan: DumpPlan = { options, imagesDir, workDir, leaveRunning: options.leaveRunning === true || options.preDump === true, netnsPath };
  const record = {
    format: RECORD_FORMAT,
    runtime: hooks.runtime,
    id: before.ref.id,
    ...(before.rootfs ? { rootfs: before.rootfs } : {}),
    criu: {
      tcpEstablished: options.tcpEstablished === true,
      fileLocks: options.fileLocks === true,
      extUnixSk: options.extUnixSk === true,
      leaveRunning: plan.leaveRunning,
    },
    checkpointedAt: new Date().toISOString(),
    ...(await hooks.recordExtras(found, plan)),
  } as CheckpointRecord<R>;
  const lazy = options.lazyPages !== undefined;
  if (lazy) writeCheckpointRecord(imagesDir, record);

  const startedAt = Date.now();
  const held = hooks.hold !== undefined && before.state === 'running' ? hooks.hold : undefined;
  const thaw = async () => held?.thaw(found).catch(() => undefined);
  await held?.pause(found);
  const outcome = await hooks.dump(found, plan, record).catch(async (err: unknown) => {
    await thaw();
    throw err;
  });
  if (!outcome.ok) {
    await hooks.recover?.(found, outcome);
    await thaw();
    throw criuFailure({
      code: options.preDump ? 'ERR_CRIU_PRE_DUMP_FAILED' : 'ERR_CRIU_DUMP_FAILED',
      runtime: hooks.label,
      what: 'checkpoint',
      id: ref.id,
      outcome,
      logPath: hooks.dumpLog(plan),
      startedAt,
      timeoutMs: hooks.timeouts.checkpointTimeoutMs,
      criuNamed: hooks.criuNamed?.(outcome) ?? false,
      toolHint: hooks.toolHint,
    });
  }
  if (plan.leaveRunning && !lazy && options.signal?.aborted) {
    // The abort let the dump run to its end (dump-abort.ts); the tasks still run, so the abort wins now.
    await thaw();
    throwIfAborted(options.signal, `checkpoint of ${ref.id}`);
  }
  await hooks.afterDump?.(found, plan);
  if (plan.leaveRunning) await thaw();
  if (!lazy) writeCheckpointRecord(imagesDir, record);

  const stats = await checkpointStats(imagesDir, workDir, outcome.durationMs);
  // A lazy dump ends the tasks once the pages are served, whatever leaveRunning said.
  const container = plan.leaveRunning && !lazy ? await hooks.inspect(before.ref.id).catch(() => before) : stoppedAfterDump(before);
  return { container, imagesDir, stats };
}
