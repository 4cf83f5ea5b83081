/**
 * The destination relay as a process of its own, detached from sshd and from the agent that asked for it (own
 * session, stdio on a log file), so that neither the death of SSH nor of the agent touches the page stream. The CLI
 * runs it as the hidden `ferry page-relay --config FILE`; runPageRelayProcess() is that command's body, and
 * spawnPageRelay() starts one and waits until it is ready. standbyPageRelay() starts the process before its work is
 * known (loading ferry's CLI takes a second or more on a loaded host, which a relay started while the container is
 * frozen would add to the downtime); it waits for its config file, and exits if the process that started it dies
 * first.
 *
 * Files in the relay's directory (0700): relay-config.json (what to do), events.jsonl (one RelayEvent per line,
 * appended), report.json (the end: { ok, report } or { ok: false, code, message }), relay.log (stdio).
 *
 * A finished relay exits 0 by itself once nothing is left to hold: its source has heard, or it has none (localOnly).
 * Signals: SIGTERM after the daemon finished exits 0. Otherwise SIGTERM means the owner has killed the restored copy
 * (rollback, or after a loss): the relay kills the daemon, drops its copies of the userfaultfds and exits 1. Never
 * SIGTERM a relay while the restored copy may still run on missing pages: it would then read zeros.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { allocPageAligned, ensurePrivateDir, FerryError, PAGE_SIZE, prepareImageDecoders, processStartTime, type ErrorCode } from '@ferry/core';
import { parseProcStat } from '../journal/proc-identity';
import { watchDir } from './dir-watch';
import { PageRelay, type PageRelayOptions, type RelayEvent, type RelayReport } from './relay';

export type RelayProcessConfig = Omit<PageRelayOptions, 'onEvent'>;

export const RELAY_CONFIG = 'relay-config.json';
export const RELAY_EVENTS = 'events.jsonl';
export const RELAY_REPORT = 'report.json';

export type RelayOutcome = { ok: true; report: RelayReport } | { ok: false; code: ErrorCode; message: string };

/** The report.json in relay directory `dir` (written whole: see finish); undefined when there is none yet or it is unreadable. */
export function readRelayOutcome(dir: string): RelayOutcome | undefined {
  const path = join(dir, RELAY_REPORT);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as RelayOutcome;
  } catch {
    return undefined;
  }
}

/** The hidden command's body. Resolves with the exit code. */
export async function runPageRelayProcess(configPath: string): Promise<number> {
  const config = await awaitConfig(configPath);
  if (!config) return 1;
  const eventsPath = join(config.dir, RELAY_EVENTS);
  const emit = (event: RelayEvent | { type: 'relay-failed'; code: string; message: string }) =>
    appendFileSync(eventsPath, `${JSON.stringify({ ...event, at: Date.now() })}\n`, { mode: 0o600 });
  const finish = (outcome: RelayOutcome) => {
    // Written aside, then renamed: a reader sees no report or a whole one.
    const path = join(config.dir, RELAY_REPORT);
    writeFileSync(`${path}.new`, JSON.stringify(outcome), { mode: 0o600 });
    renameSync(`${path}.new`, path);
  };
  let relay: PageRelay;
  try {
    relay = await PageRelay.start({ ...config, onEvent: emit });
  } catch (error) {
    const code = (error as FerryError).code ?? 'ERR_AGENT_FAILED';
    emit({ type: 'relay-failed', code, message: (error as Error).message });
    finish({ ok: false, code, message: (error as Error).message });
    return 1;
  }
  let outcome: RelayOutcome | undefined;
  const stop = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => {
      if (outcome?.ok) {
        relay.release();
        return resolve(0);
      }
      relay.killDaemon();
      relay.release();
      resolve(1);
    });
  });
  relay.finished.then(
    (report) => {
      outcome = { ok: true, report };
      finish(outcome);
    },
    (error: unknown) => {
      outcome = { ok: false, code: (error as FerryError).code ?? 'ERR_POSTCOPY_DAEMON_LOST', message: (error as Error).message };
      finish(outcome);
    },
  );
  // A finished relay exits once the source has heard, or at once without a source (nothing left to hold); a failed
  // one waits for its owner's SIGTERM.
  return Promise.race([stop, relay.finished.then(() => relay.sourceReleased.then(() => 0), () => stop)]);
}

/** Until `path` appears (written whole: renamed into place); undefined once the process that started this one died. */
async function awaitConfig(path: string): Promise<RelayProcessConfig | undefined> {
  // What the work's first steps would load on first use, loaded while there is time: the image decoders
  // (protobufjs builds them at their first call) and the native addon (the lazy-pages socket). ~20 ms here.
  prepareImageDecoders();
  allocPageAligned(PAGE_SIZE);
  // process.ppid is read once at start: the parent now is in /proc.
  const ppid = () => parseProcStat(readFileSync('/proc/self/stat', 'utf8'))?.ppid;
  const parent = ppid();
  const changes = watchDir(dirname(path), [basename(path)]);
  try {
    while (!existsSync(path)) {
      if (ppid() !== parent) return undefined;
      await changes.next(PARENT_CHECK_MS);
    }
  } finally {
    changes.close();
  }
  return JSON.parse(readFileSync(path, 'utf8')) as RelayProcessConfig;
}

const PARENT_CHECK_MS = 10;
const POLL_MS = 20;

export interface SpawnedRelay {
  pid: number;
  startTime: string;
  dir: string;
  /** This relay's relay-ready event. Rejects when the relay could not start. */
  ready: Promise<Extract<RelayEvent, { type: 'relay-ready' }>>;
  /** The outcome, once report.json is written; a failure when the relay ended without one (killed). */
  outcome(): Promise<RelayOutcome>;
  events(): Record<string, unknown>[];
}

/** A relay process waiting for its work (standbyPageRelay). */
export interface StandbyRelay {
  pid: number;
  /** Gives it its config (config.dir must be the standby's dir) and waits until it reports ready within timeoutMs. */
  start(config: RelayProcessConfig, timeoutMs?: number): SpawnedRelay;
}

/**
 * Starts `command page-relay --config DIR/relay-config.json` (command: how to run ferry's CLI, e.g. [node, bin]),
 * detached, and waits until it reports ready (or failed) within timeoutMs.
 */
export function spawnPageRelay(config: RelayProcessConfig, command: readonly string[], timeoutMs = 30_000): SpawnedRelay {
  return standbyPageRelay(config.dir, command).start(config, timeoutMs);
}

/** Starts a relay process in `dir` (0700) that waits for its config (see the header). */
export function standbyPageRelay(dir: string, command: readonly string[]): StandbyRelay {
  ensurePrivateDir(dir);
  const configPath = join(dir, RELAY_CONFIG);
  rmSync(configPath, { force: true }); // a predecessor's (takeover) would start this one before its owner says so
  const log = openSync(join(dir, 'relay.log'), 'a', 0o600);
  const child = spawn(command[0]!, [...command.slice(1), 'page-relay', '--config', configPath], { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  const pid = child.pid!;
  // Its end, as this process sees it: a relay killed before it wrote report.json (or before it was ready) says
  // nothing any more, and a poll on its files would wait forever.
  let ended: string | undefined;
  child.once('exit', (code, signal) => (ended = signal ?? `exit ${code}`));
  const startTime = processStartTime(pid) ?? '';
  const start = (config: RelayProcessConfig, timeoutMs = 30_000): SpawnedRelay => {
    if (config.dir !== dir) throw new Error(`a relay standing by in ${dir} given work in ${config.dir}`);
    // A predecessor's events and outcome (takeover) are not this relay's.
    const eventsPath = join(dir, RELAY_EVENTS);
    const since = existsSync(eventsPath) ? statSync(eventsPath).size : 0;
    rmSync(join(dir, RELAY_REPORT), { force: true });
    writeFileSync(`${configPath}.new`, JSON.stringify(config), { mode: 0o600 });
    renameSync(`${configPath}.new`, configPath);
    const events = (): Record<string, unknown>[] =>
      existsSync(eventsPath)
        ? readFileSync(eventsPath).subarray(since).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    const poll = async <T>(what: string, file: string, probe: () => T | undefined, limitMs: number): Promise<T> => {
      const deadline = Date.now() + limitMs;
      const changes = watchDir(dir, [file]);
      try {
        for (;;) {
          const v = probe();
          if (v !== undefined) return v;
          if (Date.now() > deadline) throw new FerryError('ERR_AGENT_FAILED', `the page relay (pid ${pid}) did not report ${what} within ${limitMs} ms`, { hint: `See ${join(dir, 'relay.log')}.` });
          await changes.next(POLL_MS);
        }
      } finally {
        changes.close();
      }
    };
    const ready = poll(
      'ready',
      RELAY_EVENTS,
      () => {
        for (const e of events()) {
          if (e.type === 'relay-ready') return e as Extract<RelayEvent, { type: 'relay-ready' }>;
          if (e.type === 'relay-failed') throw new FerryError((e.code as ErrorCode) ?? 'ERR_AGENT_FAILED', `the page relay failed to start: ${String(e.message)}`, { hint: `See ${join(dir, 'relay.log')}.` });
        }
        if (ended) throw new FerryError('ERR_AGENT_FAILED', `the page relay (pid ${pid}) ended (${ended}) before it was ready`, { hint: `See ${join(dir, 'relay.log')}.` });
        return undefined;
      },
      timeoutMs,
    );
    ready.catch(() => undefined);
    return {
      pid,
      startTime,
      dir,
      ready,
      events,
      outcome: () =>
        poll(
          'its outcome',
          RELAY_REPORT,
          () => readRelayOutcome(dir) ?? (ended ? { ok: false, code: 'ERR_POSTCOPY_DAEMON_LOST', message: `the page relay (pid ${pid}) ended (${ended}) without an outcome` } : undefined),
          24 * 3600_000,
        ),
    };
  };
  return { pid, start };
}
