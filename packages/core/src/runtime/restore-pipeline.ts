/**
 * The one restore pipeline every runtime adapter runs, the checkpoint pipeline's counterpart: check the images and
 * the request, read the record, settle the name, let the runtime put in place what its tool needs (each step's undo
 * registered before the step, Incus's revert), run the tool under its deadline and the caller's abort, report a
 * failure one way (tool-failure.ts), and let the runtime finish (raise held links, thaw) and say what runs.
 *
 * Contract (RuntimeAdapter.restore): when this returns the container runs under the name; when it throws, every undo
 * the hooks registered has run: nothing of it runs, and the runtime holds no container of that name that the restore
 * created.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { statsIfWritten } from '../image/image-records';
import type { ContainerInfo, RuntimeName } from '../model/container';
import { FerryError } from '../model/ferry-error';
import { assertImagesDir, Reverter, throwIfAborted } from './adapter-common';
import { readCheckpointRecord, RECORD_FILE, type CheckpointRecord, type RecordedCriuFlags } from './checkpoint-record';
import type { PipelineRuntime } from './checkpoint-pipeline';
import type { ToolOutcome } from './run-tool';
import type { RestoreOptions, RestoreResult, RestoreSteps } from './runtime-adapter';
import { criuFailure } from './tool-failure';

/** One restore, as the pipeline settled it. */
export interface RestorePlan<R extends RuntimeName> {
  readonly options: RestoreOptions;
  /** Absolute; holds CRIU images. */
  readonly imagesDir: string;
  readonly workDir: string;
  /** The name the container gets (checked by assertName). */
  readonly name: string;
  readonly record: CheckpointRecord<R> | undefined;
  /** CRIU's flags: the caller's, else the dump's. */
  readonly criu: Omit<RecordedCriuFlags, 'leaveRunning'>;
}

export interface RestoreHooks<R extends RuntimeName, P> extends PipelineRuntime<R> {
  /** Refuses options the runtime cannot honour (lazy pages, new addresses), before anything is read. */
  refuse?(options: RestoreOptions): void;
  /** The record in imagesDir; by default the runtime's (undefined when there is none). */
  readRecord?(imagesDir: string): CheckpointRecord<R> | undefined;
  /** ERR_PRECHECK_BAD_INPUT for a name the runtime cannot take. */
  assertName(name: string): void;
  /** Whether the runtime holds a container of that name already (the restore is then ERR_RUNTIME_NAME_TAKEN). */
  exists?(name: string): Promise<boolean>;
  /** RuntimeAdapter.manualCommands: the taken name's hint says how to remove what holds it. */
  manualCommands(name: string): { thaw: string; remove: string };
  /** Puts in place what the tool needs; registers the undo of each side effect with `revert` before making it. */
  prepare(plan: RestorePlan<R>, revert: Reverter): Promise<P>;
  /** Runs the restore; resolves with the tool's outcome (failures included). */
  run(prepared: P, plan: RestorePlan<R>): Promise<ToolOutcome>;
  /** Where CRIU's log of this restore lands. */
  restoreLog(prepared: P, plan: RestorePlan<R>): string;
  /** After a failed run, before the undo steps: what a killed tool leaves that only the runtime knows (mounts). */
  recover?(prepared: P, plan: RestorePlan<R>, outcome: ToolOutcome): Promise<void>;
  /** After a successful run: the last network steps, a thaw; the container as it now runs (throws if it does not). */
  finish(prepared: P, plan: RestorePlan<R>): Promise<ContainerInfo>;
  criuNamed?(outcome: ToolOutcome): boolean;
}

/** RuntimeAdapter.restore through `hooks`. */
export async function restoreContainer<R extends RuntimeName, P>(hooks: RestoreHooks<R, P>, options: RestoreOptions): Promise<RestoreResult> {
  throwIfAborted(options.signal, 'restore');
  const imagesDir = resolve(options.imagesDir);
  assertImagesDir(imagesDir);
  hooks.refuse?.(options);
  const record = hooks.readRecord ? hooks.readRecord(imagesDir) : readCheckpointRecord(imagesDir, hooks.runtime);
  const name = options.name ?? record?.id;
  if (name === undefined) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${imagesDir} has no ${RECORD_FILE}: the container name is unknown`, {
      hint: 'Pass the name (and the bundle to restore into).',
    });
  }
  hooks.assertName(name);
  const workDir = resolve(options.workDir ?? imagesDir);
  const plan: RestorePlan<R> = {
    options,
    imagesDir,
    workDir,
    name,
    record,
    criu: {
      tcpEstablished: options.tcpEstablished ?? record?.criu.tcpEstablished ?? false,
      fileLocks: options.fileLocks ?? record?.criu.fileLocks ?? false,
      extUnixSk: options.extUnixSk ?? record?.criu.extUnixSk ?? false,
    },
  };
  if (await hooks.exists?.(name)) {
    throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `${hooks.label} already has a container named ${name}`, {
      hint: `Restore under another name, or remove it first (\`${hooks.manualCommands(name).remove}\`).`,
      details: { name },
    });
  }
  mkdirSync(workDir, { recursive: true, mode: 0o700 });

  const revert = new Reverter();
  try {
    const preparing = Date.now();
    const prepared = await hooks.prepare(plan, revert);
    const startedAt = Date.now();
    const outcome = await hooks.run(prepared, plan);
    if (!outcome.ok) {
      await hooks.recover?.(prepared, plan, outcome);
      throw criuFailure({
        code: 'ERR_CRIU_RESTORE_FAILED',
        runtime: hooks.label,
        what: 'restore',
        id: name,
        outcome,
        logPath: hooks.restoreLog(prepared, plan),
        startedAt,
        timeoutMs: hooks.timeouts.restoreTimeoutMs,
        criuNamed: hooks.criuNamed?.(outcome) ?? false,
        toolHint: hooks.toolHint,
      });
    }
    const finishing = Date.now();
    const container = await hooks.finish(prepared, plan);
    revert.success();
    const steps: RestoreSteps = { prepareMs: startedAt - preparing, toolMs: outcome.durationMs, finishMs: Date.now() - finishing };
    const criu = await criuRestoreStats(workDir, startedAt);
    return { container, restoreMs: outcome.durationMs, steps: criu ? { ...steps, criu } : steps };
  } catch (err) {
    await revert.fail();
    throw err;
  }
}

/** CRIU's own statistics of this restore (stats-restore in the work dir), if it wrote them after `since`. */
async function criuRestoreStats(workDir: string, since: number): Promise<RestoreSteps['criu']> {
  // An older file is another restore's; the file system's clock may round below the start.
  const stats = (await statsIfWritten(join(workDir, 'stats-restore'), since - 1000))?.restore;
  return stats && { restoreMs: stats.restoreMs, forkingMs: stats.forkingMs, ...(stats.pagesRestored === undefined ? {} : { pagesRestored: stats.pagesRestored }) };
}
